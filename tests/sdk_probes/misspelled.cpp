// Must not build: `descibe` is describe misspelled, which would silently not be registered.
#include <kbuild/plugin.hpp>

class Misspelled {
public:
    Misspelled(kbuild::Host&, const kbuild::Json&) {}
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest&) { return {}; }
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& r) { return {r.root}; }
    kbuild::Description descibe() { return {}; }
};

KBUILD_PLUGIN(Misspelled, "misspelled", "1.0.0", "", "misspelledos")
