#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so pipelines written in TypeScript load as they are.
require('tsx/cjs/api').register();
require('../cli.ts').main();
