/* What finding memory bugs costs: `tarn run --leaks` and `tarn run --check`
 * (libtarn-debug.so) against the release heap (`tarn run`, i.e.
 * libtarn-override.so), on bench_heap's workloads and on python3 running
 * an allocation-heavy script with PYTHONMALLOC=malloc (so every object goes
 * through malloc), and Valgrind's memcheck (--leak-check=full) on the same
 * python3 run. Targets (issue 13): --leaks at most 1.5x, --check at most 3x
 * the release heap's time, and tarn at least 10x faster than Valgrind.
 *
 * Every run is a child started through build/tarn, as a user would, with
 * its output thrown away; wall time is measured by the parent (wait4).
 * Repetitions are outermost, so background load spreads over all modes;
 * each cell is a median. A run whose exit status is not the program's own
 * (0, or 23 from leaks_exitcode when the leak report found leaks) counts
 * as failed and its cell says so. Valgrind is slow (about 50x on this
 * script), so it runs once, three times with --full; so does any mode
 * whose first run took more than SLOW_RATIO times the release heap's: its
 * verdict against the targets cannot change, and make bench stays short. */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "bench.h"

static const char *const heap_workloads[] = {"larson", "xmalloc", "cache-scratch", "alloc-mix",
                                             "realloc-grow"};
enum { N_HEAP = sizeof heap_workloads / sizeof *heap_workloads, N_ROWS = N_HEAP + 1 };
#define PYTHON_ROW N_HEAP

/* Dicts, strings, lists, JSON and sorting: small objects made and dropped
 * by the hundred thousand, as a test suite's Python does. */
static const char python_script[] =
    "import json\n"
    "from collections import Counter\n"
    "words = ['w%d' % (i * 7919 % 10007) for i in range(60000)]\n"
    "c = Counter(words)\n"
    "doc = [{'id': i, 'name': words[i], 'tags': list(range(i % 11))} for i in range(20000)]\n"
    "text = json.dumps(doc)\n"
    "back = json.loads(text)\n"
    "s = sorted(set(words))\n"
    "acc = {}\n"
    "for i in range(60000):\n"
    "    acc[i % 997] = acc.get(i % 997, '') + str(i)[-1]\n"
    "print(len(c), len(text), len(back), len(s), sum(len(v) for v in acc.values()))\n";

/* Debian's interpreter itself: a wrapper script in front of it (pyenv's
 * shim) would be all Valgrind traces. */
#define PYTHON "/usr/bin/python3"

typedef enum { MODE_RELEASE, MODE_LEAKS, MODE_CHECK, MODE_VALGRIND, N_MODES } run_mode_t;
static const char *const mode_names[N_MODES] = {"tarn run", "--leaks", "--check", "valgrind"};

enum { MAX_REPS = 5 };
#define SLOW_RATIO 10.0
static double ms[N_ROWS][N_MODES][MAX_REPS];
static int runs[N_ROWS][N_MODES], failed_status[N_ROWS][N_MODES];

/* argv for one run: the command (tarn run [flag] -- or valgrind), then the
 * program. */
static int build_argv(const char *tarn, int row, run_mode_t mode, const char **argv) {
    int n = 0;
    if (mode == MODE_VALGRIND) {
        argv[n++] = "valgrind";
        argv[n++] = "-q";
        argv[n++] = "--leak-check=full";
    } else {
        argv[n++] = tarn;
        argv[n++] = "run";
        if (mode == MODE_LEAKS) argv[n++] = "--leaks";
        if (mode == MODE_CHECK) argv[n++] = "--check";
        argv[n++] = "--";
    }
    if (row == PYTHON_ROW) {
        argv[n++] = PYTHON;
        argv[n++] = "-c";
        argv[n++] = python_script;
    } else {
        argv[n++] = "build/bench/bench_heap";
        argv[n++] = "--run";
        argv[n++] = heap_workloads[row];
        argv[n++] = "1";
    }
    argv[n] = NULL;
    return n;
}

/* One run in a child, output to /dev/null; its wall time in *out. Returns
 * 0, or the exit status (or 128 + signal) when it is not the program's own. */
static int measure(const char *tarn, int row, run_mode_t mode, double *out) {
    const char *argv[16];
    build_argv(tarn, row, mode, argv);
    double t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        setenv("PYTHONMALLOC", "malloc", 1);
        unsetenv("TARN_OPTIONS");
        execvp(argv[0], (char **)argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return 1;
    *out = (bench_now_ns() - t0) / 1e6;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    int code = WEXITSTATUS(status);
    return code == 0 || (mode == MODE_LEAKS && code == 23) ? 0 : code;
}

static const char *row_name(int row) {
    return row == PYTHON_ROW ? "python3 (PYTHONMALLOC=malloc)" : heap_workloads[row];
}

static double median_of(int row, run_mode_t mode) {
    return runs[row][mode] ? bench_median(ms[row][mode], runs[row][mode]) : 0;
}

/* One cell: the median ms and its ratio to the release heap, or why not. */
static void print_cell(int row, run_mode_t mode, double base) {
    if (failed_status[row][mode]) {
        printf(" failed (exit %d) |", failed_status[row][mode]);
        return;
    }
    if (!runs[row][mode]) {
        printf(" not measured |");
        return;
    }
    double m = median_of(row, mode);
    if (mode == MODE_RELEASE || !base)
        printf(" %.0f", m);
    else
        printf(" %.0f (%.2fx)", m, m / base);
    printf(runs[row][mode] == 1 && mode != MODE_VALGRIND ? " [1 run] |" : " |");
}

static void print_table(int reps, int valgrind_reps) {
    printf("\n| workload | tarn run ms | --leaks ms (x) | --check ms (x) | valgrind ms (x) |\n"
           "|---|---|---|---|---|\n");
    for (int row = 0; row < N_ROWS; row++) {
        double base = failed_status[row][MODE_RELEASE] ? 0 : median_of(row, MODE_RELEASE);
        printf("| %s |", row_name(row));
        for (run_mode_t m = MODE_RELEASE; m < N_MODES; m++) {
            if (m == MODE_VALGRIND && row != PYTHON_ROW)
                printf(" |");
            else
                print_cell(row, m, base);
        }
        printf("\n");
    }
    printf("medians of %d runs (valgrind: %d; [1 run]: over %.0fx after one); (x) = time / the "
           "release heap's (targets: --leaks <= 1.5x, --check <= 3x)\n",
           reps, valgrind_reps, SLOW_RATIO);
    double v = median_of(PYTHON_ROW, MODE_VALGRIND);
    for (run_mode_t m = MODE_LEAKS; m <= MODE_CHECK; m++) {
        double t = median_of(PYTHON_ROW, m);
        if (v && t && !failed_status[PYTHON_ROW][m] && !failed_status[PYTHON_ROW][MODE_VALGRIND])
            printf("python3: valgrind --leak-check=full takes %.1fx the time of tarn run %s "
                   "(target >= 10x)\n",
                   v / t, mode_names[m]);
    }
}

/* build/tarn and both libraries must be there; returns the command's path. */
static const char *find_tarn(void) {
    static char path[4096];
    if (!realpath("build/tarn", path) || access("build/libtarn-override.so", R_OK) != 0 ||
        access("build/bench/bench_heap", X_OK) != 0) {
        fprintf(stderr, "bench_debug: build/tarn, build/libtarn-override.so or "
                        "build/bench/bench_heap missing (make all bench)\n");
        return NULL;
    }
    return path;
}

int main(int argc, char **argv) {
    int full = bench_full(argc, argv);
    int reps = full ? 5 : 3, valgrind_reps = full ? 3 : 1;
    const char *tarn = find_tarn();
    if (!tarn) return 1;
    bool debug_lib = access("build/libtarn-debug.so", R_OK) == 0;
    bool valgrind = system("command -v valgrind >/dev/null") == 0;
    bench_machine_line();
    printf("bench_debug: the cost of tarn run --leaks / --check (libtarn-debug.so) against the "
           "release heap, and valgrind on python3\n");
    if (!debug_lib)
        printf("build/libtarn-debug.so is not built: --leaks and --check not measured\n");
    if (!valgrind) printf("valgrind is not installed (make deps): not measured\n");
    for (int r = 0; r < reps; r++)
        for (int row = 0; row < N_ROWS; row++)
            for (run_mode_t m = MODE_RELEASE; m < N_MODES; m++) {
                if ((m == MODE_LEAKS || m == MODE_CHECK) && !debug_lib) continue;
                if (m == MODE_VALGRIND && (row != PYTHON_ROW || !valgrind || r >= valgrind_reps))
                    continue;
                if (failed_status[row][m]) continue;
                if (r > 0 && !full && m != MODE_RELEASE && runs[row][m] &&
                    ms[row][m][0] > SLOW_RATIO * ms[row][MODE_RELEASE][0])
                    continue;
                double t;
                int st = measure(tarn, row, m, &t);
                if (st)
                    failed_status[row][m] = st;
                else
                    ms[row][m][runs[row][m]++] = t;
            }
    print_table(reps, valgrind ? valgrind_reps : 0);
    return 0;
}
