import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pair } from '../../lib/dsl/types';
import { LocalRuntime } from '../../local/runtime';
import { contextSource, startUi, type UiServer } from '../../local/ui/server';
import wordcount from '../../examples/wordcount/pipeline';
import { countWords, generateLines } from '../support/corpus';

// Debian's chromium, driven by playwright-core; `.ci/run` installs it.
const CHROMIUM = '/usr/bin/chromium';
const title = (text: string): string =>
  existsSync(CHROMIUM) ? text : `${text} (skipped: no ${CHROMIUM}; apt-get install chromium)`;

describe.skipIf(!existsSync(CHROMIUM))(title('the streaming page, in headless Chromium'), () => {
  let run: LocalRuntime<string, Pair<string, number>>;
  let ui: UiServer;
  let browser: Browser;
  const profile = mkdtempSync(path.join(tmpdir(), 'sluice-chromium-'));
  const first = generateLines(300, 21);

  beforeAll(async () => {
    run = await LocalRuntime.start(wordcount, { clock: 'manual' });
    await run.push(first);
    await run.advance();
    // Batch 2: a record that is not UTF-8 (dead-lettered by the source) beside good ones.
    await run.pushRaw([Buffer.from('to be'), Buffer.from([0xc3, 0x28])]);
    await run.advance();
    await run.advance();
    ui = await startUi(contextSource(run.ctx), { port: 0 });
    browser = await chromium
      .launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      })
      .then((context) => context.browser() ?? Promise.reject(new Error('no browser')));
  }, 120_000);

  afterAll(async () => {
    await browser.close();
    await ui.close();
    await run.stop();
    rmSync(profile, { recursive: true, force: true });
  });

  it('shows every batch with its figures, charts them, and follows new batches live', async () => {
    // Arrange
    const page = await browser.newPage();

    // Act
    await page.goto(ui.url);
    await page.locator('[data-testid="batches"] tbody tr').nth(2).waitFor();

    // Assert
    expect(await page.locator('[data-testid="pipeline"]').textContent()).toBe('wordcount');
    const cells = async (testid: string) =>
      page.locator(`[data-testid="batches"] tbody [data-testid="${testid}"]`).allTextContents();
    expect(await cells('status')).toEqual(['complete', 'complete', 'complete']);
    expect(await cells('input')).toEqual([String(first.length), '2', '0']);
    expect(await cells('output')).toEqual([String(countWords(first).size), '2', '0']);
    expect(await cells('dead-letters')).toEqual(['0', '1', '0']);
    expect((await cells('cost'))[0]).toMatch(/^\$\d/);
    expect(await page.locator('.uplot canvas').count()).toBeGreaterThanOrEqual(8);

    await run.push(['one more batch']);
    await run.advance();
    await page.locator('[data-testid="batches"] tbody tr').nth(3).waitFor();
    expect((await cells('input'))[3]).toBe('1');
    await page.close();
  });

  it('drills down into a batch: its phases and tasks, and a sample of its dead letters', async () => {
    // Arrange
    const page = await browser.newPage();
    await page.goto(ui.url);
    const second = page.locator('[data-testid="batches"] tbody tr[data-batch="2"]');
    await second.waitFor();

    // Act
    await second.click();
    await page.locator('[data-testid="detail"] [data-testid="phases"]').waitFor();

    // Assert
    const detail = page.locator('[data-testid="detail"]');
    expect(await detail.locator('h2').textContent()).toBe('Batch 2');
    expect(await detail.locator('[data-testid="phase-function"]').allTextContents()).toEqual([
      'tokenize',
      'count',
    ]);
    const tasks = await detail.locator('[data-testid="phase-tasks"]').allTextContents();
    expect(Number(tasks[0])).toBeGreaterThanOrEqual(1);
    expect(await detail.locator('[data-testid="figures"]').textContent()).toMatch(/^2 records in/);
    expect(await detail.locator('[data-testid="requests"]').textContent()).toContain('s3:PutObject');
    const sample = await detail.locator('[data-testid="dead-letter-sample"] li').allTextContents();
    expect(sample).toHaveLength(1);
    expect(sample[0]).toMatch(/^decode in /);
    expect(await detail.locator('h3', { hasText: 'Dead letters' }).textContent()).toContain(
      'by kind: decode 1',
    );
    // Word count's stages keep no state across batches: the page shows none.
    expect(await detail.locator('[data-testid="state"]').count()).toBe(0);
    await page.close();
  });
});
