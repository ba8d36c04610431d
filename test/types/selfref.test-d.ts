import { expectTypeOf, it } from 'vitest';
import { utf8 } from 'sluice';
import { testPipeline } from 'sluice/testing';

it('resolves the package by its own name', () => {
  expectTypeOf(utf8.decode).returns.toEqualTypeOf<string>();
  expectTypeOf(testPipeline).toBeFunction();
});
