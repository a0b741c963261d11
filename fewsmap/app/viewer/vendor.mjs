// Copy the browser libraries the viewer loads (and their licences) from node_modules into a
// folder, by default vendor/: `npm ci && npm run vendor [-- FOLDER]`. The one list of what is
// vendored, used by `make vendor`, the Dockerfile and the wheel and sdist builds (setup.py).
// It also writes the sha256 of package-lock.json the files came from, so a build can tell a
// current vendor/ from a stale one.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// vendored name ← path under node_modules
const FILES = {
  "ol.js": "ol/dist/ol.js",
  "ol.css": "ol/ol.css",
  "countries-110m.json": "world-atlas/countries-110m.json",
  "LICENSE-ol.md": "ol/LICENSE.md",
  "LICENSE-world-atlas": "world-atlas/LICENSE",
};

const target = resolve(process.argv[2] ?? join(here, "vendor"));
mkdirSync(target, { recursive: true });
for (const [name, source] of Object.entries(FILES)) {
  copyFileSync(join(here, "node_modules", source), join(target, name));
}
const lock = readFileSync(join(here, "package-lock.json"));
writeFileSync(join(target, ".package-lock.sha256"),
              `${createHash("sha256").update(lock).digest("hex")}\n`);
