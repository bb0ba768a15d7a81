/**
 * Reading a response body someone else sends (a broker, a vendor service, a metadata service):
 * at most `maxBytes` of it. Past the cap `drop` runs (the caller's way of abandoning its kind of
 * stream) and the answer is undefined, so no caller buffers more than it allowed.
 */
export async function readCapped(body: AsyncIterable<Uint8Array>, maxBytes: number, drop: () => void): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      drop();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
