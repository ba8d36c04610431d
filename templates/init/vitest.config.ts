import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Each test starts the embedded emulator (DynamoDB, Kinesis and S3 on loopback ports).
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
