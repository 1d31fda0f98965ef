// Run as a child by up.sh's check (preconditions.ts#checkAppModule): loads APP_MODULE exactly as
// a node will, in a process of its own (a module with side effects must not run inside up.sh),
// and tells the parent over IPC whether it loaded and, if not, why.
import { AppModuleError, loadApplication } from '../../services/node/app-loader.ts';

export type AppModuleVerdict = { ok: true } | { ok: false; reason: string };

const path = process.argv[2] as string;
let verdict: AppModuleVerdict;
try {
  await loadApplication(path);
  verdict = { ok: true };
} catch (error) {
  verdict = {
    ok: false,
    reason: error instanceof AppModuleError ? error.reason : (error as Error).message,
  };
}
process.send?.(verdict, () => process.exit(0));
