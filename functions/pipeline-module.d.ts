// The bundler aliases this module to the pipeline being deployed (see infra/).
declare module 'sluice-pipeline' {
  // An import type, not an import declaration: ambient modules may not import by relative path.
  const pipeline: import('../lib/dsl/pipeline').AnyPipeline;
  export default pipeline;
}
