// Must not build: crawl takes a CrawlRequest it may change, which the SDK cannot call with the
// host's const request; without the check it would silently not be registered.
#include <kbuild/plugin.hpp>

class WrongSignature {
public:
    WrongSignature(kbuild::Host&, const kbuild::Json&) {}
    kbuild::ReleaseList crawl(kbuild::CrawlRequest&) { return {}; }
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest&) { return {}; }
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& r) { return {r.root}; }
};

KBUILD_PLUGIN(WrongSignature, "wrongsignature", "1.0.0", "", "wrongos")
