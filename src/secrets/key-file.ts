import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { generateKeyLine, type KeyRing, parseKeyRing } from '../key-ring.js';

/**
 * Where the keys come from: `WHARF_ENCRYPTION_KEY` when set (config.ts parses it; production refuses to start
 * without it). Otherwise, so that `npm install && npm start` needs no set-up, a key file beside the embedded
 * PostgreSQL's data (`.wharf/encryption.key` for the default `EMBEDDED_PG_DIR`), created on first use with mode 600
 * and kept: every process of this checkout (web, worker, ops commands, the chaos harness) reads the same file.
 * The file holds key lines in the variable's format; prepend a line to rotate.
 */

export function keyFilePath(embeddedPgDir: string): string {
  return path.join(path.dirname(path.resolve(projectRoot, embeddedPgDir)), 'encryption.key');
}

/** Reads the key file, creating it with one new key when it does not exist (racing creators: one wins, all read it). */
export function loadOrCreateKeyFile(file: string, log: (line: string) => void = () => {}): KeyRing {
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${generateKeyLine()}\n`, { mode: 0o600, flag: 'wx' });
    log(`encryption key: created ${file} (mode 600; keep it with the data, set WHARF_ENCRYPTION_KEY in production)`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if ((statSync(file).mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
      log(`encryption key: ${file} was readable by others; now mode 600`);
    }
  }
  try {
    return parseKeyRing(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`key file ${file}: ${(err as Error).message}`]);
  }
}

/**
 * The config with its key ring: WHARF_ENCRYPTION_KEY's, else (outside production, where loadConfig already refused)
 * the key file beside the embedded data, created on first use (mode 600). Every process calls this once at start.
 */
export function withKeyRing(config: Config, log: (line: string) => void = () => {}): Config {
  if (config.encryptionKeys) return config;
  if (config.env === 'production') throw new ConfigError(['WHARF_ENCRYPTION_KEY is required when NODE_ENV=production']);
  return Object.freeze({ ...config, encryptionKeys: loadOrCreateKeyFile(keyFilePath(config.embeddedPgDir), log) });
}

