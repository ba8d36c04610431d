import { z } from 'zod';

/** One sensor reading, as JSON on the stream: `{"sensor":"cellar","celsius":11.2,"at":"2026-11-21T10:00:15Z"}`. */
export const Reading = z.object({
  sensor: z.string().min(1),
  celsius: z.number().gt(-273.15),
  /** When the reading was taken: its event time. */
  at: z.iso.datetime(),
});

/** A validated reading. */
export type Reading = z.infer<typeof Reading>;
