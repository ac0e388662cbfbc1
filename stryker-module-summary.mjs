// A Stryker reporter that writes reports/mutation/summary.json: per security module (the groups
// in stryker.config.mjs) the mutant counts by status, the score and the run that produced them, so
// docs/mutation-testing.md and CI can read one small file instead of the full report. A run over
// some modules (FLT_MUTATE_MODULE) replaces those modules and keeps the others from earlier runs.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { MODULES } from './stryker.config.mjs';

const SUMMARY_FILE = 'reports/mutation/summary.json';

function emptyCounts() {
  return { mutants: 0, Killed: 0, Survived: 0, Timeout: 0, NoCoverage: 0, Ignored: 0, RuntimeError: 0, CompileError: 0, Pending: 0 };
}

/** Stryker's score: detected (killed or timed out) over valid mutants (ignored and errored ones left out). */
function score(c) {
  const valid = c.Killed + c.Timeout + c.Survived + c.NoCoverage;
  return valid === 0 ? null : Math.round(((c.Killed + c.Timeout) / valid) * 10_000) / 100;
}

class ModuleSummaryReporter {
  static inject = [];
  #started = Date.now();
  #done = Promise.resolve();

  onMutationTestReportReady(report) {
    this.#done = this.#write(report);
  }

  async #write(report) {
    const fresh = {};
    for (const [file, result] of Object.entries(report.files)) {
      const path = relative(process.cwd(), resolve(file));
      const name = Object.keys(MODULES).find((m) => MODULES[m].includes(path)) ?? 'other';
      fresh[name] ??= { files: {}, survivors: [], ...emptyCounts() };
      const fileCounts = (fresh[name].files[path] = emptyCounts());
      for (const mutant of result.mutants) {
        for (const c of [fresh[name], fileCounts]) {
          c.mutants += 1;
          c[mutant.status] = (c[mutant.status] ?? 0) + 1;
        }
        if (mutant.status === 'Survived' || mutant.status === 'NoCoverage') {
          fresh[name].survivors.push({ file: path, line: mutant.location.start.line, mutator: mutant.mutatorName, replacement: mutant.replacement, status: mutant.status });
        }
      }
    }
    const run = { finishedAt: new Date().toISOString(), durationSeconds: Math.round((Date.now() - this.#started) / 1000) };
    for (const m of Object.values(fresh)) {
      m.run = run;
      m.score = score(m);
      for (const f of Object.values(m.files)) f.score = score(f);
    }
    const previous = await readFile(SUMMARY_FILE, 'utf8').then(JSON.parse, () => ({ modules: {} }));
    const modules = { ...previous.modules, ...fresh };
    const total = emptyCounts();
    for (const m of Object.values(modules)) for (const key of Object.keys(total)) total[key] += m[key] ?? 0;
    total.score = score(total);
    await mkdir(dirname(SUMMARY_FILE), { recursive: true });
    await writeFile(SUMMARY_FILE, `${JSON.stringify({ total, modules }, null, 2)}\n`);
  }

  wrapUp() {
    return this.#done;
  }
}

export const strykerPlugins = [{ kind: 'Reporter', name: 'module-summary', injectableClass: ModuleSummaryReporter }];
