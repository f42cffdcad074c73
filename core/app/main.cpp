#include "app/cli.h"
#include "util/interrupt.h"

int main(int argc, char** argv) {
    kbuild::install_interrupt_handling();
    const int status = kbuild::run_cli(argc, argv);
    kbuild::stop_here_if_interrupted();  // the signal thread sets the exit status
    return status;
}
