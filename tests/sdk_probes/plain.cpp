// Builds: the two hooks every plugin writes, an optional crawl and compare_releases, and the
// SDK's unpack and hash_config. A member named like nothing a hook is named is fine.
#include <kbuild/plugin.hpp>

class Plain {
public:
    Plain(kbuild::Host&, const kbuild::Json&) {}
    kbuild::ReleaseList crawl(const kbuild::CrawlRequest&) { return {}; }
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest&) { return {}; }
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& r) { return {r.root}; }
    int compare_releases(const kbuild::Release& a, const kbuild::Release& b) const {
        return a.release.compare(b.release);
    }
    void refresh() {}
};

KBUILD_PLUGIN(Plain, "plain", "1.0.0", "", "plainos")
