#!/usr/bin/env node
// Thin launcher so `npx attex` works: the CLI is TypeScript run by Node 24's type stripping.
import { runCli } from '../src/cli/main.ts';

process.exitCode = await runCli(process.argv.slice(2));
