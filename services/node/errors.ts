// Every error the kit reports to a person, with its code and exit status: the scripts print
// `<command>: <CODE> <message>` and exit with the status (scripts/kit/report.ts#fail); a node that
// cannot start exits with it too. README lists them (test/unit/errors.test.ts keeps it so).
export const ERRORS = {
  KIT_ERR_USAGE: { exit: 64, meaning: 'a command was given an argument it does not take' },
  KIT_ERR_CONFIG: {
    exit: 78,
    meaning: 'a variable has a bad value; the message names the variable and the value',
  },
  KIT_ERR_APP_MODULE: {
    exit: 78,
    meaning: '`APP_MODULE` does not load, or has no default export function',
  },
  KIT_ERR_TEMPLATE: {
    exit: 78,
    meaning:
      'the nginx template has an unknown placeholder, or `nginx -t` refused the rendered file (the running configuration keeps serving)',
  },
  KIT_ERR_UNSAFE_PATH: {
    exit: 77,
    meaning: '`RUN_DIR` or a file in it could be changed by another user, or is a symbolic link',
  },
  KIT_ERR_PREFLIGHT: {
    exit: 69,
    meaning: 'nginx, redis-server or chromium is missing and cannot be installed here',
  },
  KIT_ERR_REDIS: { exit: 69, meaning: 'Redis does not answer (`./scripts/emit.sh`)' },
  KIT_ERR_RUNNING: {
    exit: 75,
    meaning: 'the kit already runs, or is starting, from this `RUN_DIR`',
  },
  KIT_ERR_NOT_RUNNING: {
    exit: 3,
    meaning: 'the command needs the kit of this `RUN_DIR` running (`reload.sh`, `restart.sh`)',
  },
  KIT_ERR_START: {
    exit: 70,
    meaning:
      'a part did not become ready, or a node did not come back (the log named says why); what was started is stopped',
  },
  KIT_ERR_INTERRUPTED: {
    exit: 130,
    meaning: '`up.sh` was interrupted while starting; what was started is stopped',
  },
  KIT_ERR_BENCH: { exit: 1, meaning: 'a benchmark variant or scenario failed' },
  KIT_ERR_INTERNAL: { exit: 1, meaning: 'anything else (a bug); the message says where' },
} as const satisfies Record<string, { exit: number; meaning: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error a person can act on: its code says which, its message what to do. */
export class KitError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}
