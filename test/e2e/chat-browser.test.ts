// The bundled chat in a real browser (the system's chromium) against a real kit, talking to a
// real socket.io-client user on another node.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ROOT } from '../../services/node/config.ts';
import { type ChatUser, chatUserAwayFrom } from '../harness/chat.ts';
import { ask, next } from '../harness/clients.ts';
import { type Kit, launchKit, waitFor } from '../harness/kit.ts';

const SCREENSHOT = join(ROOT, 'test-output', 'chat-browser.png');
const MARKUP = '<img src=x onerror=alert(1)>';
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sent {
  ok?: true;
  error?: string;
  message?: { id: string; content: string; from: string; to: string };
}

/** The texts of the messages in the open conversation, oldest first. */
const shownMessages = (page: Page) =>
  page.locator('[data-testid=conversation] [data-testid=message]').allTextContents();

async function untilShown(page: Page, want: string[]): Promise<void> {
  try {
    await waitFor(`the conversation to show ${JSON.stringify(want)}`, async () => {
      const shown = await shownMessages(page);
      return JSON.stringify(shown) === JSON.stringify(want);
    });
  } catch (error) {
    assert.deepEqual(await shownMessages(page), want);
    throw error;
  }
}

/** The node named by the page's connection state, once it says connected. */
async function connectedNode(page: Page): Promise<string> {
  const state = page.getByTestId('connection-state');
  return waitFor('the page to be connected', async () => {
    const match = /^connected · (\S+)$/.exec((await state.textContent()) ?? '');
    return match?.[1];
  });
}

describe('the chat in a browser', { timeout: 120_000 }, () => {
  let kit: Kit | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let bob: ChatUser | undefined;
  let aliceID = '';
  const dialogs: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    kit = await launchKit();
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 960, height: 640 } });
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    bob?.socket.disconnect();
    await browser?.close().catch(() => {});
    await kit?.stop();
  });

  it('picks a username and lists a user connected to another node', async () => {
    const url = (kit as Kit).url;
    await page.goto(`${url}/`);
    await page.locator('#username-form input[name=username]').fill('alice');
    await page.locator('#username-form button[type=submit]').click();
    const aliceNode = await connectedNode(page);

    bob = await chatUserAwayFrom(url, [aliceNode], { username: 'bob' });
    assert.notEqual(bob.session.node, aliceNode);

    const me = page.locator('[data-testid=user]', { hasText: '(you)' });
    await me.waitFor();
    aliceID = (await me.getAttribute('data-user-id')) ?? '';
    assert.ok(aliceID, 'your own entry carries your userID');
    assert.match((await me.textContent()) ?? '', /alice/);

    const bobEntry = page.locator(`[data-testid=user][data-user-id="${bob.session.userID}"]`);
    await bobEntry
      .getByTestId('status')
      .filter({ hasText: /^online$/ })
      .waitFor();
    assert.match((await bobEntry.textContent()) ?? '', /bob/);
    assert.ok(!(await page.locator('#username-form').isVisible()));
  });

  it('sends a private message that the other user receives, shown once', async () => {
    const other = bob as ChatUser;
    await page.locator(`[data-testid=user][data-user-id="${other.session.userID}"]`).click();
    const received = next<{ content: string; from: string; to: string }>(
      other.socket,
      'private message',
    );
    await page.locator('#message-form input[name=content]').fill('hello bob');
    await page.locator('#message-form input[name=content]').press('Enter');

    const message = await received;
    assert.deepEqual(
      [message.content, message.from, message.to],
      ['hello bob', aliceID, other.session.userID],
    );
    await untilShown(page, ['hello bob']);
    // The sender gets its own message twice (the echo to all its sockets, and the ack).
    await settle(300);
    assert.deepEqual(await shownMessages(page), ['hello bob']);
  });

  it('shows a message from the other user in the open conversation', async () => {
    const other = bob as ChatUser;
    const sent = await ask<Sent>(other.socket, 'private message', {
      content: 'hi alice',
      to: aliceID,
    });
    assert.equal(sent.ok, true, sent.error);
    await untilShown(page, ['hello bob', 'hi alice']);
  });

  it('keeps the user and the conversation across a reload', async () => {
    const sessionID = await page.evaluate(() => localStorage.getItem('kit.sessionID'));
    assert.ok(sessionID);
    await page.reload();
    await connectedNode(page);
    await untilShown(page, ['hello bob', 'hi alice']);
    assert.ok(!(await page.locator('#username-form').isVisible()), 'the picker is shown again');
    assert.equal(await page.locator('#me').textContent(), 'alice');
    const me = page.locator('[data-testid=user]', { hasText: '(you)' });
    assert.equal(await me.getAttribute('data-user-id'), aliceID);
    assert.equal(await page.evaluate(() => localStorage.getItem('kit.sessionID')), sessionID);
  });

  it('shows markup sent by another user as text', async () => {
    const other = bob as ChatUser;
    const sent = await ask<Sent>(other.socket, 'private message', { content: MARKUP, to: aliceID });
    assert.equal(sent.ok, true, sent.error);
    await untilShown(page, ['hello bob', 'hi alice', MARKUP]);
    const conversation = page.getByTestId('conversation');
    assert.equal(await conversation.getByTestId('message').last().textContent(), MARKUP);
    // Long enough for a broken image's onerror to have run, had the markup been parsed.
    await settle(300);
    assert.equal(await conversation.locator('img').count(), 0);
    assert.deepEqual(dialogs, []);
    mkdirSync(join(ROOT, 'test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
  });

  it('rejoins its rooms after losing its node and shows what was said meanwhile', async () => {
    const other = bob as ChatUser;
    await page.locator('#room-form input[name=room]').fill('lobby');
    await page.locator('#room-form button[type=submit]').click();
    await page.locator('[data-testid=room][data-room="lobby"]').waitFor();
    const joined = await ask<{ ok?: true; error?: string }>(other.socket, 'join', 'lobby');
    assert.equal(joined.ok, true, joined.error);
    const first = await ask<Sent>(other.socket, 'room message', {
      room: 'lobby',
      content: 'before the drop',
    });
    assert.equal(first.ok, true, first.error);
    await untilShown(page, ['before the drop']);

    const aliceNode = await connectedNode(page);
    process.kill((kit as Kit).pid(aliceNode), 'SIGKILL');
    await waitFor('the page to notice the lost connection', async () => {
      const state = await page.getByTestId('connection-state').getAttribute('data-state');
      return state !== 'connected';
    });
    const meanwhile = await ask<Sent>(other.socket, 'room message', {
      room: 'lobby',
      content: 'while you were away',
    });
    assert.equal(meanwhile.ok, true, meanwhile.error);

    await connectedNode(page);
    await untilShown(page, ['before the drop', 'while you were away']);
    assert.deepEqual(await page.evaluate(() => localStorage.getItem('kit.rooms')), '["lobby"]');
    assert.deepEqual(pageErrors, []);
  });
});
