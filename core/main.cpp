#include "cli.h"

int main(int argc, char** argv) { return kbuild::run_cli(argc, argv); }
