import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

it('docs/receipt.md embeds exactly the execution predicate schema the verifier uses', () => {
  const doc = readFileSync(path.join(repoRoot, 'docs/receipt.md'), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
  const embedded = blocks.map((b) => JSON.parse(b) as { $id?: string }).find((b) => b.$id?.includes('/execution/v1/'));
  const file = JSON.parse(readFileSync(path.join(repoRoot, 'src/receipts/schema/execution-v1.json'), 'utf8'));
  expect(embedded).toEqual(file);
});
