import { z } from 'zod';

/** One sensor reading, as JSON on the stream: `{"sensor":"s1","celsius":21.5,"at":"2026-11-21T10:00:00Z"}`. */
export const Reading = z.object({
  sensor: z.string().min(1),
  celsius: z.number().gt(-273.15),
  at: z.string().datetime().optional(),
});

/** A validated reading. */
export type Reading = z.infer<typeof Reading>;
