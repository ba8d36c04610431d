import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Module, createRequire } from 'node:module';
import path from 'node:path';
import type { TransformOptions } from 'node:stream';
import { compileFunction } from 'node:vm';

/** Marks the bucket controller this file compiled, so a second emulator in the process reuses it. */
const PATCHED_CONTROLLER = Symbol.for('sluice.emulator.desCompatibleBucketController');

/**
 * s3rver's ListObjectsV2 continuation tokens (generateContinuationToken and
 * decipherContinuationToken in lib/controllers/bucket.js) use single DES, which Node 20's OpenSSL 3
 * no longer provides: every listing past 1,000 keys fails. This compiles that one file with its own
 * `require('crypto')` answered by {@link desCompatibleCrypto}, and seeds the require cache with it,
 * so nothing else in the process sees a changed crypto and node_modules stays untouched. It must
 * run before s3rver is first required through `requireHere`, which then picks the controller up
 * from the cache.
 *
 * @example
 * const requireHere = createRequire(__filename);
 * installDesCompatibleBucketController(requireHere);
 * const S3rver = requireHere('@20minutes/s3rver') as typeof import('@20minutes/s3rver');
 */
export function installDesCompatibleBucketController(requireHere: NodeJS.Require): void {
  const s3rverMain = requireHere.resolve('@20minutes/s3rver');
  const file = path.join(path.dirname(s3rverMain), 'controllers', 'bucket.js');
  const cached = requireHere.cache[file];
  if (cached !== undefined) {
    if (Reflect.get(cached, PATCHED_CONTROLLER) === true) return;
    // s3rver was loaded elsewhere with the stock controller. Forgetting s3rver's own files (not
    // its dependencies) makes our require build a fresh copy wired to the patched controller;
    // whoever loaded the old copy keeps it.
    const libDir = path.dirname(path.dirname(file)) + path.sep;
    for (const id of Object.keys(requireHere.cache)) {
      if (id.startsWith(libDir)) Reflect.deleteProperty(requireHere.cache, id);
    }
  }

  const controller = new Module(file);
  controller.filename = file;
  const requireFromController = createRequire(file);
  const patchedCrypto = desCompatibleCrypto();
  const controllerRequire = (id: string): unknown =>
    id === 'crypto' || id === 'node:crypto' ? patchedCrypto : requireFromController(id);
  const wrapper = compileFunction(
    readFileSync(file, 'utf8'),
    ['exports', 'require', 'module', '__filename', '__dirname'],
    { filename: file },
  );
  // Cached before it runs, as Node's loader does, so a cyclic require sees the same module.
  requireHere.cache[file] = controller;
  try {
    wrapper.call(
      controller.exports,
      controller.exports,
      controllerRequire,
      controller,
      file,
      path.dirname(file),
    );
  } catch (error) {
    Reflect.deleteProperty(requireHere.cache, file);
    throw error;
  }
  controller.loaded = true;
  Reflect.defineProperty(controller, PATCHED_CONTROLLER, { value: true });
}

/**
 * Node's crypto, except that single-DES CBC with an 8-byte key runs as DES-EDE3-CBC with the key
 * repeated three times: encrypt-decrypt-encrypt with one key is single DES, so tokens stay
 * byte-identical to what s3rver produces where DES still exists.
 */
function desCompatibleCrypto(): typeof crypto {
  const asTripleDes = (
    algorithm: string,
    key: crypto.CipherKey,
  ): { readonly algorithm: string; readonly key: crypto.CipherKey } => {
    const name = algorithm.toLowerCase();
    if ((name === 'des' || name === 'des-cbc') && Buffer.isBuffer(key) && key.length === 8) {
      return { algorithm: 'des-ede3-cbc', key: Buffer.concat([key, key, key]) };
    }
    return { algorithm, key };
  };
  const createCipheriv = (
    algorithm: string,
    key: crypto.CipherKey,
    iv: crypto.BinaryLike | null,
    options?: TransformOptions,
  ): crypto.Cipher => {
    const cipher = asTripleDes(algorithm, key);
    return crypto.createCipheriv(cipher.algorithm, cipher.key, iv, options);
  };
  const createDecipheriv = (
    algorithm: string,
    key: crypto.CipherKey,
    iv: crypto.BinaryLike | null,
    options?: TransformOptions,
  ): crypto.Decipher => {
    const cipher = asTripleDes(algorithm, key);
    return crypto.createDecipheriv(cipher.algorithm, cipher.key, iv, options);
  };
  // Delegating through the prototype leaves every other member (randomBytes, ...) untouched and
  // avoids reading crypto's deprecated getters, as copying the module would.
  return Object.create(crypto, {
    createCipheriv: { value: createCipheriv },
    createDecipheriv: { value: createDecipheriv },
  }) as typeof crypto;
}
