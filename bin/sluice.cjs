#!/usr/bin/env node
// The sluice command. Pipelines are usually TypeScript, so tsx's hooks are registered first when the
// project has tsx; in a checkout of sluice itself the CLI runs from its sources.
const { existsSync } = require('node:fs');
const path = require('node:path');

let tsx = false;
try {
  require('tsx/cjs/api').register();
  tsx = true;
} catch {
  // Without tsx the CLI still runs; loading a .ts pipeline then says what to install.
}
const source = path.join(__dirname, '..', 'local', 'cli.ts');
if (tsx && existsSync(source)) {
  require(source).main();
} else {
  require('../dist/cjs/local/cli.js').main();
}
