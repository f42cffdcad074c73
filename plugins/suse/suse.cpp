// SUSE Linux Enterprise and openSUSE (Leap, Tumbleweed): kernels from yum/zypper repositories
// (crawl) or from rpm files and names (batch). A kernel release (`uname -r`,
// 5.14.21-150400.24.46-default) is two packages built together:
// - kernel-<flavour>-devel (kernel-default-devel-5.14.21-150400.24.46.1.x86_64.rpm): the flavour's
//   build output, /usr/src/linux-<kver>-obj/<arch>/<flavour> (.config, Module.symvers, generated
//   headers, the built scripts), whose Makefile includes the source tree's;
// - the noarch kernel-devel of the same version-release: that source tree, /usr/src/linux-<kver>.
// A variant's kernel (rt; azure on SLE 15) takes kernel-devel-<variant> and its trees are
// linux-<kver>-<variant>[-obj]. <kver> is version-release without the rebuild counter the build
// service appends (150400.24.46.1 -> 150400.24.46). kernel-macros, split from kernel-devel since
// SLE 15 SP2, goes along when listed; the module build does not read it.
#include <kbuild/rpm.hpp>
#include <kbuild/rpm_repo.hpp>

#include <filesystem>
#include <regex>

namespace fs = std::filesystem;
using kbuild::rpm::Binary;

namespace {

// kernel-default-devel -> "default"; "" for the noarch halves (kernel-devel, kernel-devel-rt)
// and kernel-macros.
std::string flavour_of(const std::string& name) {
    static const std::regex flavour(R"(^kernel-([a-z0-9]+)-devel$)");
    std::smatch m;
    return std::regex_match(name, m, flavour) ? std::string(m[1]) : std::string();
}

bool wanted(std::string_view name) {
    static const std::regex shape(R"(^kernel-(devel(-[a-z0-9]+)?|[a-z0-9]+-devel|macros)$)");
    return std::regex_match(name.begin(), name.end(), shape);
}

// "5.14.21-150400.24.46-default" -> {"5.14.21-150400.24.46", "default"}.
std::pair<std::string, std::string> split_flavour(const std::string& release) {
    const size_t dash = release.rfind('-');
    if (dash == std::string::npos) return {release, ""};
    return {release.substr(0, dash), release.substr(dash + 1)};
}

class Suse : public kbuild::rpm::FamilyPlugin {
public:
    Suse(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, wanted,
                       {{{"sles",
                          "SUSE/Products/SLE-Module-Basesystem/15-SP5/{arch}/product,"
                          "SUSE/Updates/SLE-Module-Basesystem/15-SP5/{arch}/update,"
                          "SUSE/Products/SLE-Module-Basesystem/15-SP6/{arch}/product,"
                          "SUSE/Updates/SLE-Module-Basesystem/15-SP6/{arch}/update"},
                         {"opensuse",
                          "distribution/leap/15.5/repo/oss,update/leap/15.5/sle,"
                          "distribution/leap/15.6/repo/oss,update/leap/15.6/sle,tumbleweed/repo/oss"}},
                        /*mirror_lists=*/false,
                        "comma-separated repository paths under the mirror (a SUSE mirror made by RMT or "
                        "SMT, or openSUSE's); {arch}: x86_64, aarch64"}) {}

    // The flavour's tree, wherever its variant put it: usr/src/linux-<kver>[-<variant>]-obj/<arch>/<flavour>.
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        const auto [kver, flavour] = split_flavour(request.release);
        const fs::path src = fs::path(request.root) / "usr/src";
        std::error_code ec;
        for (const auto& obj : fs::directory_iterator(src, ec)) {
            const std::string name = obj.path().filename();
            if (name.rfind("linux-" + kver, 0) != 0 || name.size() < 4 || name.substr(name.size() - 4) != "-obj")
                continue;
            for (const auto& arch : fs::directory_iterator(obj.path(), ec))
                if (fs::is_directory(arch.path() / flavour)) return {(arch.path() / flavour).string()};
        }
        throw kbuild::Error((src / ("linux-" + kver + "-obj/<arch>/" + flavour)).string() + ": missing (no kernel-" +
                            flavour + "-devel tree for " + request.release + ")");
    }

    // rpm's order of version-release, then the flavour's name.
    int compare_releases(const kbuild::Release& a, const kbuild::Release& b) const {
        const auto [a_kver, a_flavour] = split_flavour(a.release);
        const auto [b_kver, b_flavour] = split_flavour(b.release);
        if (const int order = kbuild::rpm::compare_evr(a_kver, b_kver)) return order;
        return a_flavour.compare(b_flavour);
    }

protected:
    std::string release_of(const Binary& b) const override {
        const std::string flavour = flavour_of(b.name);
        if (flavour.empty()) return {};
        return b.version + "-" + kbuild::rpm::without_last_part(b.release) + "-" + flavour;
    }

    // The noarch source tree of the same kernel (the variant's first), and kernel-macros when
    // listed. A maintenance update may rebuild the flavour's package and not the noarch one
    // (kernel-default-devel-5.3.18-24.67.3 goes with kernel-devel-5.3.18-24.67.2, as its Requires
    // says: kernel-devel = 5.3.18-24.67), so they are paired without the rebuild counter, the
    // same build first.
    void add_companions(kbuild::Release& release, const Binary& kernel,
                        const std::vector<Binary>& listed) const override {
        using kbuild::rpm::without_last_part;
        const std::string flavour = flavour_of(kernel.name);
        const std::string kver = kernel.version + "-" + without_last_part(kernel.release);
        auto find = [&](const std::string& name) -> const Binary* {
            const Binary* best = nullptr;
            for (const auto& b : listed) {
                if (b.name != name || b.arch != "noarch" || b.version + "-" + without_last_part(b.release) != kver)
                    continue;
                if (b.release == kernel.release) return &b;
                if (!best || kbuild::rpm::compare_segments(best->release, b.release) < 0) best = &b;
            }
            return best;
        };
        const Binary* source = find("kernel-devel-" + flavour);
        if (!source) source = find("kernel-devel");
        if (!source) {
            release.unavailable = "no kernel-devel-" + kver + ".*.noarch.rpm listed: it holds /usr/src/linux-" + kver +
                                  ", the source tree " + kernel.name + " builds over";
            return;
        }
        release.packages.push_back(source->file);
        if (const Binary* macros = find("kernel-macros")) release.packages.push_back(macros->file);
    }
};

}  // namespace

KBUILD_PLUGIN(Suse, "suse", "0.1.0", "suse", "sles", "opensuse")
