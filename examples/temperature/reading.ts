// zod/mini keeps the deployed functions small; `import { z } from 'zod'` works the same.
import * as z from 'zod/mini';

/** One sensor reading, as JSON on the stream: `{"sensor":"cellar","celsius":11.2,"at":"2026-11-21T10:00:15Z"}`. */
export const Reading = z.object({
  sensor: z.string().check(z.minLength(1)),
  celsius: z.number().check(z.gt(-273.15)),
  /** When the reading was taken: its event time. */
  at: z.iso.datetime(),
});

/** A validated reading. */
export type Reading = z.infer<typeof Reading>;
