// The command line: `kbuild <verb> [flags]`. Exit codes: 0 done, 1 a target or verb failed,
// 2 bad usage.
#pragma once

namespace kbuild {

int run_cli(int argc, char** argv);

}  // namespace kbuild
