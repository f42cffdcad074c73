// A module's source tree as kbuild sees it: the modules its top Kbuild (else Makefile) declares
// with obj-m, and the trees nested in it that declare modules of their own (the probe modules a
// driver's Makefile builds first to learn what the kernel offers). Only the declared modules
// are artifacts; a nested tree's output is never the module's, its errors never the build's.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

struct DeclaredModules {
    // Paths relative to the tree without .ko ("falco", "sub/foo"), in the order declared.
    std::vector<std::string> names;
    // False when an obj-m entry could not be read (a variable set outside the file): the
    // names are then not the whole list.
    bool complete = true;
};

// obj-m of <dir>/Kbuild, else <dir>/Makefile, as kbuild reads it: continuation lines joined,
// comments dropped, variables assigned in the same file substituted. Conditionals are not
// evaluated (every branch counts).
DeclaredModules declared_modules(const std::filesystem::path& dir);

// The subdirectories (relative, sorted) below `dir` whose own Kbuild or Makefile declares
// obj-m: separate module trees, not part of the module built from `dir`.
std::vector<std::string> nested_module_trees(const std::filesystem::path& dir);

}  // namespace kbuild
