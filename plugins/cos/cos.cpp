// Google's Container-Optimized OS, whose kernels are shipped as source (ABI 1.7). COS's tools
// server (cos-tools) holds, per build id: <id>/kernel-src.tar.gz (the source, without a top
// directory), <id>/kernel-headers.tgz (usr/src/linux-headers-<uname -r>/, the only place its
// .config is published) and <id>/toolchain_env (the toolchain the kernel was built with; the
// host reads the compiler from the config, CONFIG_CC_VERSION_TEXT: clang on recent COS). A
// release is a build: unnamed until unpacked, its variant the build id. unpack puts the source
// in <root>/source, the headers' .config in <root>/kernel.config (the release's config, named
// by a path relative to the root) and the headers directory's release in <root>/kernel.release,
// which names the release. COS publishes neither sums nor signatures: its packages are fetched
// with no sha256 to check, and recorded as unverified.
#include <kbuild/options.hpp>
#include <kbuild/plugin.hpp>
#include <kbuild/source_kernel.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

namespace fs = std::filesystem;

namespace {

const std::string kSource = "kernel-src.tar.gz";
const std::string kHeaders = "kernel-headers.tgz";
const std::string kToolchain = "toolchain_env";

bool is_build_id(const std::string& text) {
    static const std::regex id(R"(\d+(\.\d+)+)");
    return std::regex_match(text, id);
}

const kbuild::Package* package_named(const kbuild::Release& release, const std::string& name) {
    for (const auto& p : release.packages)
        if (p.name == name) return &p;
    return nullptr;
}

class Cos {
public:
    Cos(kbuild::Host& host, const kbuild::Json&) : host_(host) {}

    kbuild::Description describe() {
        return {{{"builds", "comma-separated COS build ids to build: 17400.0.0,16919.103.10", ""}}, {}, {}};
    }

    // Each build asked for, from the tools server (--mirror). Its toolchain_env is listed when
    // the server has one (a small file, fetched to know).
    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        if (request.mirrors.empty())
            throw kbuild::Error(
                "no mirror to crawl (give --mirror URL of a COS tools server, e.g. "
                "https://storage.googleapis.com/cos-tools)");
        std::string server = request.mirrors.front();
        while (!server.empty() && server.back() == '/') server.pop_back();
        const auto builds = kbuild::split_list(kbuild::option(request.options, "builds", ""));
        if (builds.empty()) throw kbuild::Error("name the COS builds to build: --option builds=17400.0.0[,...]");
        kbuild::ReleaseList list;
        for (const auto& id : builds) {
            if (!is_build_id(id)) throw kbuild::Error("build " + id + " is not a COS build id (17400.0.0)");
            kbuild::Release r = release_of(id, request.arch);
            for (const auto& name : {kSource, kHeaders, kToolchain}) {
                kbuild::Package p;
                p.name = name;
                p.url = server + "/" + id + "/" + name;
                if (name != kToolchain || on_server(p)) r.packages.push_back(p);
            }
            list.releases.push_back(r);
        }
        return list;
    }

    // Files (or URLs) of the tools server's layout, <build id>/<file>, grouped by directory.
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        kbuild::ReleaseList list;
        std::map<std::string, kbuild::Release> builds;  // directory -> its release
        std::map<std::string, std::string> ids;         // build id -> its directory
        for (const auto& file : request.files) {
            const std::string name = kbuild::source::file_name_of(file);
            const std::string dir = file.substr(0, file.size() - name.size());
            const std::string id = fs::path(dir).parent_path().filename().string();
            if (name != kSource && name != kHeaders && name != kToolchain) {
                list.unclaimed.push_back({file, "not a COS tools file (<build id>/" + kSource + ", " + kHeaders +
                                                    " or " + kToolchain + ")"});
                continue;
            }
            if (!is_build_id(id)) {
                list.unclaimed.push_back({file, "its directory " + id + " is not a COS build id (17400.0.0)"});
                continue;
            }
            if (const auto seen = ids.emplace(id, dir); seen.first->second != dir) {
                list.unclaimed.push_back({file, "build " + id + " is already listed from " + seen.first->second});
                continue;
            }
            auto it = builds.emplace(dir, release_of(id, request.arch)).first;
            it->second.packages.push_back(kbuild::source::batch_package(request, file));
        }
        for (auto& [dir, r] : builds) {
            if (!package_named(r, kSource)) {
                for (const auto& p : r.packages)
                    list.unclaimed.push_back(
                        {p.where(), "no " + kSource + " beside it: COS's kernel is built from source"});
                continue;
            }
            if (!package_named(r, kHeaders))
                r.unavailable = "no " + kHeaders + " beside " + kSource + ": it holds the kernel's config";
            list.releases.push_back(r);
        }
        return list;
    }

    // The headers' .config and release into the root, then the source into <root>/source.
    kbuild::UnpackResult unpack(const kbuild::UnpackRequest& request) {
        const kbuild::Package* source = package_named(request.release, kSource);
        const kbuild::Package* headers = package_named(request.release, kHeaders);
        if (!source || !headers)
            throw kbuild::Error("cos " + kbuild::release_id(request.release) + ": needs both " + kSource + " and " +
                                kHeaders);
        for (const auto& p : request.release.packages) record_unsigned(p);
        const fs::path root = request.dest;
        const fs::path unpacked = root / "kernel-headers";
        host_.extract({headers->path, unpacked.string(), "data"});
        std::vector<fs::path> trees;
        if (fs::is_directory(unpacked / "usr/src"))
            for (const auto& entry : fs::directory_iterator(unpacked / "usr/src"))
                if (entry.path().filename().string().rfind("linux-headers-", 0) == 0) trees.push_back(entry.path());
        if (trees.size() != 1)
            throw kbuild::Error(headers->where() + ": holds " + std::to_string(trees.size()) +
                                " usr/src/linux-headers-<release>/ directories, not one");
        const std::string release = trees.front().filename().string().substr(std::string("linux-headers-").size());
        // The .config read must be a file inside what was unpacked: a symlink may point anywhere.
        const fs::path config = fs::weakly_canonical(trees.front() / ".config");
        const std::string base = fs::weakly_canonical(unpacked).string() + "/";
        if (release.empty() || config.string().rfind(base, 0) != 0 || !fs::is_regular_file(config))
            throw kbuild::Error(headers->where() + ": usr/src/linux-headers-" + release +
                                "/ holds no .config (the kernel's config)");
        fs::copy_file(config, root / "kernel.config", fs::copy_options::overwrite_existing);
        std::ofstream(root / "kernel.release") << release << "\n";
        fs::remove_all(unpacked);
        host_.extract({source->path, (root / "source").string(), "data"});  // the large one, once all else is sound
        return {root.string()};
    }

    // <root>/source, or its one top directory when the tarball has one.
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        return {kbuild::source::kernel_tree_in((fs::path(request.root) / "source").string()), false};
    }

private:
    bool on_server(const kbuild::Package& p) const {
        try {
            host_.fetch(p);
            return true;
        } catch (const std::exception& e) {
            host_.debug(p.url + ": not listed (" + e.what() + ")");
            return false;
        }
    }

    // COS signs nothing: a package fetched by URL is handed to the host's verify as unsigned,
    // which records it in its target's `unverified` (with a key configured for cos: "no
    // signature published"). A local file is the user's.
    void record_unsigned(const kbuild::Package& p) const {
        if (p.url.empty()) return;
        kbuild::VerifyRequest request;
        request.file = p.path;
        request.url = p.url;
        request.package = p.url;
        request.required = false;
        request.signature_optional = true;
        try {
            host_.verify(request);
        } catch (const std::exception& e) {  // a host without trust: nothing to record it in
            host_.debug(p.url + ": " + e.what());
        }
    }

    static kbuild::Release release_of(const std::string& id, const std::string& arch) {
        kbuild::Release r;
        r.kernelversion = "1";
        r.distro = "cos";
        r.target = "cos";
        r.arch = arch;
        r.variant = id;
        r.config.name = "kernel.config";
        r.config.path = "kernel.config";  // relative: unpack puts it in the unpacked root
        return r;
    }

    kbuild::Host& host_;
};

}  // namespace

KBUILD_PLUGIN(Cos, "cos", "0.1.0", "", "cos")
