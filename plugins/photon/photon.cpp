// VMware Photon OS 3, 4 and 5: kernels from its yum repositories (photon_release_<v>_<arch>,
// photon_updates_<v>_<arch>) or from rpm files and names (batch). A kernel release is one
// package, linux[-<flavour>]-devel (linux-esx-devel-5.10.152-3.ph4.x86_64.rpm), holding
// /usr/src/linux-headers-<release>; the release (`uname -r`) is version-release, with the
// flavour appended for every kernel but the generic one: 5.10.152-3.ph4 (linux-devel),
// 5.10.152-3.ph4-esx, -secure, -rt, -aws. Every flavour is the target photon.
#include <kbuild/kernel_tree.hpp>
#include <kbuild/rpm.hpp>
#include <kbuild/rpm_repo.hpp>

#include <regex>

using kbuild::rpm::Binary;

namespace {

// linux-devel -> "", linux-esx-devel -> "esx"; nullopt for other names.
std::optional<std::string> flavour_of(std::string_view name) {
    static const std::regex shape(R"(^linux(-([a-z0-9]+))?-devel$)");
    std::match_results<std::string_view::const_iterator> m;
    if (!std::regex_match(name.begin(), name.end(), m, shape)) return std::nullopt;
    return std::string(m[2]);
}

bool wanted(std::string_view name) {
    return flavour_of(name).has_value();
}

// "5.10.152-3.ph4-esx" -> "5.10.152-3.ph4"; the generic kernel's release is already that.
std::string without_flavour(const std::string& release) {
    static const std::regex shape(R"(^([^-]+-[^-]+)(-.*)?$)");
    std::smatch m;
    return std::regex_match(release, m, shape) ? std::string(m[1]) : release;
}

class Photon : public kbuild::rpm::FamilyPlugin {
public:
    Photon(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, wanted,
                       {{{"photon",
                          "3.0/photon_release_3.0_{arch},3.0/photon_updates_3.0_{arch},"
                          "4.0/photon_release_4.0_{arch},4.0/photon_updates_4.0_{arch},"
                          "5.0/photon_release_5.0_{arch},5.0/photon_updates_5.0_{arch}"}},
                        /*mirror_lists=*/false,
                        "comma-separated repository paths under the mirror ({arch}: x86_64, aarch64)"}) {}

    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        return kbuild::kernel_dir_in(request, "usr/src", "linux-headers-");
    }

    // rpm's order of version-release, then the flavour ("" first).
    int compare_releases(const kbuild::Release& a, const kbuild::Release& b) const {
        const std::string a_kver = without_flavour(a.release), b_kver = without_flavour(b.release);
        if (const int order = kbuild::rpm::compare_evr(a_kver, b_kver)) return order;
        return a.release.compare(b.release);
    }

protected:
    std::string release_of(const Binary& b) const override {
        const std::string flavour = flavour_of(b.name).value_or("");
        return b.version + "-" + b.release + (flavour.empty() ? "" : "-" + flavour);
    }

    void describe_release(kbuild::Release& release, const Binary&) const override {
        release.kernelversion = "1";
        release.target = "photon";
    }
};

}  // namespace

KBUILD_PLUGIN(Photon, "photon", "0.1.0", "photon", "photon")
