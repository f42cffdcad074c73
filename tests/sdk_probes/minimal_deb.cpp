// The least a new deb-family plugin writes: which packages are a kernel's headers, and its crawl.
#include <kbuild/deb_archive.hpp>

namespace {

bool wanted(std::string_view name) {
    return name.rfind("linux-headers-", 0) == 0;
}

kbuild::deb::PairingRules rules() {
    kbuild::deb::PairingRules r;
    r.release_of = [](const kbuild::deb::Binary& b) { return b.name.substr(std::string("linux-headers-").size()); };
    return r;
}

class MinimalDeb : public kbuild::deb::FamilyPlugin {
public:
    MinimalDeb(kbuild::Host& host, const kbuild::Json&) : FamilyPlugin(host, wanted, rules()) {}

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        kbuild::deb::ArchiveQuery query{request.mirrors, {"stable"}, {"main"}, request.arch};
        return crawl_and_pair(request, query);
    }
};

}  // namespace

KBUILD_PLUGIN(MinimalDeb, "minimaldeb", "1.0.0", "debian", "minimaldeb")
