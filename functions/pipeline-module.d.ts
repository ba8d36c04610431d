// The bundler aliases this module to the pipeline being deployed (see infra/).
declare module 'sluice-pipeline' {
  import type { AnyPipeline } from '../lib/dsl/pipeline';
  const pipeline: AnyPipeline;
  export default pipeline;
}
