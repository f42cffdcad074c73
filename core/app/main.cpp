#include "app/cli.h"
#include "util/interrupt.h"

#include <malloc.h>

int main(int argc, char** argv) {
    // glibc gives each new thread an arena of its own (up to 8 per core) and keeps what it
    // freed: the download, decompression and build threads of a long run each left their peak
    // behind, so a run's RSS grew with its kernels (12 bookworm kernels: 300 MB against 108 MB
    // for one). Two arenas keep it flat (25 MB for both) at no cost measured.
    mallopt(M_ARENA_MAX, 2);
    kbuild::install_interrupt_handling();
    const int status = kbuild::run_cli(argc, argv);
    kbuild::stop_here_if_interrupted();  // the signal thread sets the exit status
    return status;
}
