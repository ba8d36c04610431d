import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors';
import { CONFIG_ENV, configFromEnv } from '../../lib/runtime/context';

const base = { [CONFIG_ENV.bucket]: 'b', [CONFIG_ENV.table]: 't' };

describe('configFromEnv: the ledger retention', () => {
  it('is unset (the runtime default) without its variable, and read in milliseconds with it', () => {
    // Act
    const unset = configFromEnv(base);
    const week = configFromEnv({ ...base, [CONFIG_ENV.ledgerRetentionMs]: '604800000' });

    // Assert
    expect(unset.ledgerRetentionMs).toBeUndefined();
    expect(week.ledgerRetentionMs).toBe(604_800_000);
  });

  it.each(['soon', '-1', ''])('refuses %j with the variable it came from', (value) => {
    // Act
    const read = () => configFromEnv({ ...base, [CONFIG_ENV.ledgerRetentionMs]: value });

    // Assert
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/SLUICE_LEDGER_RETENTION_MS must be a number of milliseconds/);
  });
});

describe('configFromEnv: whether the coordinator waits for boundaries', () => {
  it('waits unless told false, and refuses anything but true or false', () => {
    // Act
    const unset = configFromEnv(base);
    const waits = configFromEnv({ ...base, [CONFIG_ENV.coordinatorWaits]: 'true' });
    const not = configFromEnv({ ...base, [CONFIG_ENV.coordinatorWaits]: 'false' });
    const read = () => configFromEnv({ ...base, [CONFIG_ENV.coordinatorWaits]: 'no' });

    // Assert
    expect(unset.coordinatorWaits).toBeUndefined();
    expect(waits.coordinatorWaits).toBeUndefined();
    expect(not.coordinatorWaits).toBe(false);
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/SLUICE_COORDINATOR_WAITS must be true or false/);
  });
});
