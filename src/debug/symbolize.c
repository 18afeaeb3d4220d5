/* Stack frames to text, only when a report is written: elfutils' libdw
 * (dwfl) maps an address to its module, function and, where the module has
 * debug info, file and line; C++ names go through the demangler of the C++
 * runtime, looked up with dlsym, as a C program does not link libstdc++.
 * Runs on scratch memory (report.c), so libdw's allocations and the
 * demangler's leave the checked heap alone. One dwfl session per report
 * (the modules loaded now); tarn__symbolize_end closes it. */
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug/depot.h"
#include "debug/internal.h"

typedef char *demangle_fn(const char *name, char *out, size_t *len, int *status);

static Dwfl *session;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

static Dwfl *open_session(void) {
    if (session) return session;
    Dwfl *d = dwfl_begin(&callbacks);
    if (!d) return NULL;
    if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0) {
        dwfl_end(d);
        return NULL;
    }
    return session = d;
}

void tarn__symbolize_end(void) {
    if (session) dwfl_end(session);
    session = NULL;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Prints name demangled when it is a C++ name and the runtime is loaded. */
static void print_name(tarn__out_t *o, const char *name) {
    demangle_fn *demangle = NULL;
    if (name[0] == '_' && name[1] == 'Z')
        demangle = (demangle_fn *)dlsym(RTLD_DEFAULT, "__cxa_demangle");
    int status = -1;
    char *plain = demangle ? demangle(name, NULL, NULL, &status) : NULL;
    tarn__out_printf(o, "%s", status == 0 && plain ? plain : name);
    free(plain);
}

/* One frame: "#i function (file:line)", or the module and offset when the
 * address has no symbol or no line. pc is a return address: the call is
 * the instruction before it. True for main: the frames below it (the C
 * library's start-up) say nothing about the program. */
static bool print_frame(tarn__out_t *o, Dwfl *d, unsigned i, uintptr_t pc, const char *indent) {
    uintptr_t at = pc - 1;
    Dwfl_Module *m = d ? dwfl_addrmodule(d, at) : NULL;
    const char *name = m ? dwfl_module_addrname(m, at) : NULL;
    tarn__out_printf(o, "%s#%u ", indent, i);
    if (name)
        print_name(o, name);
    else
        tarn__out_printf(o, "%#lx", (unsigned long)pc);
    Dwfl_Line *line = m ? dwfl_module_getsrc(m, at) : NULL;
    int lineno = 0;
    const char *file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file) {
        tarn__out_printf(o, " (%s:%d)\n", base_name(file), lineno);
    } else if (m) {
        Dwarf_Addr start;
        const char *mod = dwfl_module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
        tarn__out_printf(o, " (%s+%#lx)\n", mod ? base_name(mod) : "?",
                         (unsigned long)(pc - start));
    } else {
        tarn__out_printf(o, "\n");
    }
    return name && strcmp(name, "main") == 0;
}

bool tarn__symbol_print(tarn__out_t *o, uintptr_t addr) {
    Dwfl *d = open_session();
    Dwfl_Module *m = d ? dwfl_addrmodule(d, addr) : NULL;
    GElf_Off off;
    GElf_Sym sym;
    const char *name = m ? dwfl_module_addrinfo(m, addr, &off, &sym, NULL, NULL, NULL) : NULL;
    if (!name) return false;
    print_name(o, name);
    if (off) tarn__out_printf(o, "+%lu", (unsigned long)off);
    return true;
}

void tarn__stack_print(tarn__out_t *o, uint32_t id, const char *indent) {
    const uintptr_t *pcs;
    unsigned n = tarn__depot_get(id, &pcs);
    if (!n) {
        tarn__out_printf(o, "%s(no stack recorded)\n", indent);
        return;
    }
    Dwfl *d = open_session();
    for (unsigned i = 0; i < n && !print_frame(o, d, i, pcs[i], indent); i++)
        continue;
}
