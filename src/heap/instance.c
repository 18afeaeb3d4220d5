/* One heap per process: a load-time check that the process's malloc and its
 * tarn_ calls reach the same copy of tarn.
 *
 * A program linked with both libtarn.so and libtarn-override.so (or holding
 * a static copy beside a shared one) loads two heaps. If malloc resolves to
 * one copy and tarn_malloc to the other, every block crossing between them
 * is foreign to its receiver: tarn_usable_size(malloc(100)) is reported as a
 * foreign pointer, and tarn_free(malloc(n)) too. Each copy of the heap runs
 * this check when it loads, before main, and reports the mismatch by name.
 *
 * How a copy sees another: the dynamic linker's global lookup
 * (dlsym(RTLD_DEFAULT)) returns the definitions that other modules bind to,
 * and dladdr names the file holding each; a copy knows its own file from
 * the address of a function of its own. The executable binds its own calls
 * statically, so a copy in the executable is used by it even when a shared
 * copy wins the global lookup. These are questions to the dynamic loader,
 * not the kernel, so they live here rather than in os.c; in a static binary
 * the loader knows nothing and the check does nothing (one copy is all such
 * a binary can hold). Which combinations work: docs/packaging.md. */
#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/auxv.h>

#include "heap/internal.h"

/* The base address of the file holding addr, and its name; false when the
 * loader does not know addr (a static binary has no loader tables). */
static bool file_of(const void *addr, const void **base, const char **name) {
    Dl_info info;
    if (!addr || !dladdr(addr, &info) || !info.dli_fbase) return false;
    *base = info.dli_fbase;
    const char *slash = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
    *name = slash ? slash + 1 : info.dli_fname;
    if (!*name || !**name) *name = "the program";
    return true;
}

/* api_note tells where the tarn_ copy is when the file name alone does not. */
static void report_copies(const char *malloc_file, const char *api_file, const char *api_note) {
    tarn__report("two copies of tarn in this process: malloc comes from %s, tarn_ functions from "
                 "%s%s; link only libtarn-override, which holds the whole tarn API",
                 malloc_file, api_file, api_note);
}

/* Reports when the copy owning malloc is not the copy the process's tarn_
 * calls reach: either this copy holds malloc and tarn_malloc resolves
 * elsewhere, or this copy sits in the executable (whose own tarn_ calls bind
 * to it) while malloc and the global tarn_malloc are another copy's. A copy
 * no module reaches (a shared libtarn.so loaded after the override, whose
 * every tarn_ symbol the override interposes) is harmless and says nothing. */
static void check_copies(void) {
    const void *self, *mal, *api, *exe;
    const char *self_name, *mal_name, *api_name, *exe_name;
    if (!file_of((const void *)check_copies, &self, &self_name) ||
        !file_of(dlsym(RTLD_DEFAULT, "malloc"), &mal, &mal_name) ||
        !file_of(dlsym(RTLD_DEFAULT, "tarn_malloc"), &api, &api_name))
        return;
    if (!file_of((const void *)getauxval(AT_PHDR), &exe, &exe_name)) exe = NULL;
    bool in_exe = exe == self;
    if (mal == self && api != self)
        report_copies(self_name, api_name, api == exe ? " (linked into the program)" : "");
    else if (in_exe && mal != self && mal == api)
        report_copies(mal_name, self_name, " (linked into the program)");
}

__attribute__((constructor)) static void instance_load(void) { check_copies(); }
