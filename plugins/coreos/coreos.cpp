// Flatcar, the EOL CoreOS Container Linux, and Fedora CoreOS.
//
// Flatcar and Container Linux ship no header packages. Each release's developer container
// (<flavour>_developer_container.bin.bz2, a disk image) holds the kernel's build tree at
// /usr/lib/modules/<release>/build (lib64 on old Container Linux), which the host reads out of
// the image in process. A release server lists each channel's releases as directories,
// <channel>/<board>/<version>/, holding the image, version.txt and the kernel's config, whose
// header and CONFIG_LOCALVERSION name the kernel (`uname -r`) without the image being fetched.
// A release is that kernel with the Flatcar version as its variant: two Flatcar versions may
// ship one kernel built apart. An image is trusted by its SHA512 in the release's DIGESTS
// (<image>.DIGESTS.asc, clearsigned by Flatcar's image signing key), checked through the host's
// verify (with no key configured for the distro it is used unverified, and recorded) and handed
// to the host's fetch, which checks the image as it downloads.
//
// Fedora CoreOS runs Fedora's kernels: kernel-devel rpms from Fedora's build-system layout,
// otherwise the SDK's rpm layer.
#include <kbuild/digest.hpp>
#include <kbuild/files.hpp>
#include <kbuild/listing.hpp>
#include <kbuild/options.hpp>
#include <kbuild/rpm.hpp>
#include <kbuild/rpm_repo.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace kbuild;

struct Flavour {
    std::string distro;    // flatcar, coreos
    std::string display;   // for messages
    std::string variable;  // version.txt's prefix: FLATCAR_VERSION=
    std::string channels;  // crawled by default
    std::string image() const { return distro + "_developer_container.bin.bz2"; }
    std::string config() const { return distro + "_production_image_kernel_config.txt"; }
};

const Flavour kFlavours[] = {
    {"flatcar", "Flatcar", "FLATCAR", "stable,beta,alpha,lts"},
    {"coreos", "CoreOS Container Linux", "COREOS", "stable,beta,alpha"},
};

const Flavour* flavour_named(const std::string& distro) {
    for (const auto& f : kFlavours)
        if (f.distro == distro) return &f;
    return nullptr;
}

// amd64 -> amd64-usr: the release server's board directory.
std::string board_of(const std::string& arch) {
    return arch + "-usr";
}

bool is_version(const std::string& text) {
    static const std::regex version(R"(\d+\.\d+\.\d+)");
    return std::regex_match(text, version);
}

// `uname -r` from a kernel config: "# Linux/x86 5.15.136 Kernel Configuration" then
// CONFIG_LOCALVERSION="-flatcar".
std::optional<std::string> release_from_config(const std::string& text) {
    static const std::regex header(R"(^# Linux/\S+ (\S+) Kernel Configuration\r?$)");
    static const std::regex local(R"re(^CONFIG_LOCALVERSION="([^"]*)"\r?$)re");
    std::smatch m;
    std::optional<std::string> version;
    std::string suffix;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!version && std::regex_match(line, m, header))
            version = m[1];
        else if (std::regex_match(line, m, local))
            suffix = m[1];
    }
    if (!version) return std::nullopt;
    return *version + suffix;
}

// The SHA512 a DIGESTS file (the release tools' make_digests: "# SHA512 HASH" then sha512sum's
// "<hex>  <file>" lines) lists for the file `name`.
std::optional<std::string> sha512_in_digests(const std::string& text, const std::string& name) {
    static const std::regex hex(R"([0-9a-fA-F]{128})");
    std::istringstream in(text);
    bool sha512 = false;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("# ", 0) == 0) {
            sha512 = line == "# SHA512 HASH";
            continue;
        }
        std::istringstream words(line);
        std::string digest, file;
        words >> digest >> file;
        if (!file.empty() && file.front() == '*') file.erase(0, 1);  // sha512sum's binary mode
        if (sha512 && file == name && std::regex_match(digest, hex)) {
            std::transform(digest.begin(), digest.end(), digest.begin(),
                           [](unsigned char c) { return std::tolower(c); });
            return digest;
        }
    }
    return std::nullopt;
}

// What version.txt says: FLATCAR_VERSION=3510.2.0.
std::string version_from_file(const fs::path& file, const Flavour& f) {
    std::ifstream in(file);
    const std::string key = f.variable + "_VERSION=";
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key, 0) == 0) return line.substr(key.size());
    return "";
}

class CoreOS : public rpm::FamilyPlugin {
public:
    CoreOS(Host& host, const Json&) : FamilyPlugin(host, rpm::kernel_devel_package, {}) {}

    Description describe() const {
        return {
            {{"channels", "comma-separated release channels (flatcar, coreos)",
              "flatcar: stable,beta,alpha,lts; coreos: stable,beta,alpha"},
             {"dist", "comma-separated Fedora dist tags of the kernels crawled (fedora-coreos)", "fc40,fc41,fc42"}}};
    }

    // Flatcar and Container Linux releases are their OS versions (the variant, 3510.2.0;
    // the kernel may be unnamed until unpacked): newest OS version first, then rpm's order of
    // the kernel (fedora-coreos's kernels have no variant).
    int compare_releases(const Release& a, const Release& b) const {
        if (const int c = rpm::compare_segments(a.variant, b.variant)) return c;
        return rpm::compare_evr(a.release, b.release);
    }

    ReleaseList crawl(const CrawlRequest& request) {
        if (const Flavour* f = flavour_named(request.distro)) return crawl_release_server(request, *f);
        if (request.mirrors.empty())
            throw Error("no fedora-coreos mirror to crawl (give --mirror URL of Fedora's build system)");
        const rpm::Crawled crawled =
            rpm::crawl_build_system(host_, request.mirrors, rpm::rpm_arch(request.arch),
                                    split_list(option(request.options, "dist", "fc40,fc41,fc42")));
        ReleaseList list = rpm::group(crawled.binaries, request.distro, request.arch,
                                      [this](Release& r, const rpm::Binary& b) { describe_release(r, b); });
        list.errors = crawled.errors;
        return list;
    }

    ReleaseList batch_packages(const BatchRequest& request) {
        if (const Flavour* f = flavour_named(request.distro)) return batch_images(request, *f);
        return FamilyPlugin::batch_packages(request);
    }

    UnpackResult unpack(const UnpackRequest& request) {
        if (!flavour_named(request.release.distro)) return FamilyPlugin::unpack(request);
        const std::string release = request.release.release.empty() ? "*" : request.release.release;
        for (const auto& package : request.release.packages) {
            check_image(package);
            const ImageExtractResult r = host_.extract_image(
                {package.path,
                 request.dest,
                 {"usr/lib/modules/" + release + "/build", "usr/lib/modules/" + release + "/source",
                  "usr/lib64/modules/" + release + "/build", "usr/lib64/modules/" + release + "/source"}});
            const bool build = std::any_of(r.matched.begin(), r.matched.end(), [](const std::string& m) {
                return m.size() > 6 && m.compare(m.size() - 6, 6, "/build") == 0;
            });
            if (!build)
                throw Error(package.path + ": no usr/lib/modules/" + release + "/build in the image's " + r.where);
        }
        return {request.dest};
    }

    // Fedora CoreOS: /usr/src/kernels/<release>. Flatcar: /usr/lib/modules/<release>/build, the
    // one there is when the release is not named yet.
    KernelDir get_kernel_dir(const KernelDirRequest& request) {
        const fs::path root = request.root;
        if (!request.release.empty() && fs::is_directory(root / "usr/src/kernels" / request.release))
            return FamilyPlugin::get_kernel_dir(request);
        std::vector<fs::path> found;
        for (const char* lib : {"usr/lib/modules", "usr/lib64/modules"}) {
            std::error_code ec;
            for (const auto& entry : fs::directory_iterator(root / lib, ec)) {
                if (!request.release.empty() && entry.path().filename() != request.release) continue;
                if (fs::is_directory(entry.path() / "build")) found.push_back(entry.path() / "build");
            }
        }
        if (found.size() == 1) return {found.front().string()};
        const std::string which = request.release.empty() ? "*" : request.release;
        if (found.empty()) throw Error((root / "usr/lib/modules" / which / "build").string() + ": missing");
        throw Error((root / "usr/lib/modules").string() + ": " + std::to_string(found.size()) +
                    " kernel build trees, expected one");
    }

private:
    ReleaseList crawl_release_server(const CrawlRequest& request, const Flavour& f) {
        if (request.mirrors.empty())
            throw Error("no " + f.distro +
                        " release server to crawl (give --mirror URL, with {channel} "
                        "where the channel goes, else URL/<channel>/ is read)");
        const fs::path cache = fs::path(host_.cache_dir()) / (f.distro + "-releases.json");
        Json known = Json::object();  // release directory URL -> kernel release: releases never change
        if (std::ifstream in(cache); in) known = Json::parse(in, nullptr, false);
        if (!known.is_object()) known = Json::object();

        ReleaseList list;
        bool listed = false;
        for (const auto& mirror : request.mirrors) {
            for (const auto& channel : split_list(option(request.options, "channels", f.channels))) {
                std::string base = mirror;
                if (const size_t at = base.find("{channel}"); at != std::string::npos) {
                    base.replace(at, 9, channel);
                } else {
                    while (!base.empty() && base.back() == '/') base.pop_back();
                    base += "/" + channel;
                }
                while (!base.empty() && base.back() == '/') base.pop_back();
                base += "/" + board_of(request.arch) + "/";
                std::vector<std::string> entries;
                try {
                    entries = list_directory(host_, base);
                    listed = true;
                } catch (const Error& e) {
                    host_.debug(std::string(e.what()) + "; channel " + channel + " skipped");
                    list.errors.push_back(e.what());
                    continue;
                }
                for (const auto& entry : entries) {
                    const std::string version = entry.substr(0, entry.size() - 1);
                    if (entry.back() != '/' || !is_version(version)) continue;
                    const std::string dir = base + entry;
                    // {"release": the kernel, "digests": the DIGESTS files found}; a bare string
                    // (an older cache) is the kernel alone.
                    Json seen = known.contains(dir) ? known[dir] : Json();
                    if (seen.is_string()) seen = Json{{"release", seen}};
                    if (!seen.is_object() || !seen.contains("release")) {
                        try {
                            const std::string config = read_file(host_.fetch({f.config(), dir + f.config()}).path);
                            const auto release = release_from_config(config);
                            if (!release)
                                throw Error(dir + f.config() +
                                            ": names no kernel (no \"# Linux/<arch> <version> Kernel "
                                            "Configuration\" line)");
                            seen = Json{{"release", *release}};
                        } catch (const Error& e) {
                            list.errors.push_back(e.what());
                            continue;
                        }
                    }
                    Package image{f.image(), dir + f.image()};
                    Json digests = seen.value("digests", Json());
                    try {
                        image.sha512 = image_sha512(image.url, f.image(), digests);
                        seen["digests"] = digests;
                    } catch (const Error& e) {
                        // Nothing of the release is used; its DIGESTS is read afresh next time.
                        seen.erase("digests");
                        known[dir] = seen;
                        list.errors.push_back(e.what());
                        continue;
                    }
                    known[dir] = seen;
                    Release r = new_release(request.distro, request.arch, version);
                    r.release = seen["release"].get<std::string>();
                    r.packages = {image};
                    list.releases.push_back(std::move(r));
                }
            }
        }
        if (!listed) throw Error(list.errors.empty() ? "nothing to crawl" : list.errors.front());
        fs::create_directories(cache.parent_path());
        const fs::path temporary = cache.string() + ".tmp-" + sha256_text(std::to_string(::getpid()));
        std::ofstream(temporary) << known.dump();
        fs::rename(temporary, cache);
        return list;
    }

    // An image known by URL alone (a --from-list line) was fetched with nothing to check it
    // against: it is checked now, before anything is read out of it, against the DIGESTS beside
    // it. A crawled one was checked by fetch (its sha512); a local file is the user's.
    void check_image(const Package& image) {
        if (!image.sha512.empty() || image.url.empty()) return;
        const std::string name = fs::path(image.url).filename().string();
        Json none;
        const std::string expected = image_sha512(image.url, name, none);
        const std::string got = file_digest(image.path, "sha512");
        if (got != expected)
            throw Error(image.url + ": sha512 mismatch with its DIGESTS (expected " + expected + ", got " + got + ")");
    }

    // The image's SHA512 as its release's DIGESTS lists it, the DIGESTS checked first through the
    // host's verify: the clearsigned <image>.DIGESTS.asc Flatcar publishes, else <image>.DIGESTS
    // and its detached <image>.DIGESTS.sig where there is one. With no key configured for the
    // distro the DIGESTS is used unverified (the host records it against this image); with one,
    // an unsigned or badly signed DIGESTS refuses the release. No DIGESTS at all refuses it too:
    // nothing could check the image. `known` holds the files found before (by their sha256,
    // read again from the host's cache) and is set to the ones used.
    std::string image_sha512(const std::string& image_url, const std::string& image_name, Json& known) {
        VerifyRequest request;
        request.required = false;
        request.package = image_url;
        auto fetched = [&](const std::string& url, const std::string& sha256) {
            Package file{fs::path(url).filename().string(), url};
            file.sha256 = sha256;
            return host_.fetch(file);
        };
        FetchedFile digests, signature;
        if (known.is_object() && known.contains("url") && known.contains("sha256")) {
            request.url = known["url"].get<std::string>();
            request.inline_signed = known.value("inline", false);
            digests = fetched(request.url, known["sha256"].get<std::string>());
            if (known.contains("signature_url"))
                signature = fetched(known["signature_url"].get<std::string>(), known.value("signature_sha256", ""));
        } else {
            try {
                request.url = image_url + ".DIGESTS.asc";
                digests = fetched(request.url, "");
                request.inline_signed = true;
            } catch (const Error& clearsigned) {
                request.url = image_url + ".DIGESTS";
                try {
                    digests = fetched(request.url, "");
                } catch (const Error& e) {
                    host_.debug(clearsigned.what());
                    throw Error(std::string(e.what()) + " (no DIGESTS: the image cannot be checked)");
                }
                try {
                    signature = fetched(request.url + ".sig", "");
                } catch (const Error& e) {
                    host_.debug(std::string(e.what()) + ": the DIGESTS has no detached signature");
                }
            }
        }
        request.file = digests.path;
        request.signature = signature.path;
        const Verified verified = host_.verify(request);
        host_.debug(request.url + (verified.signed_by.empty() ? ": not verified (" + verified.unverified + ")"
                                                              : ": signed by " + verified.signed_by));
        const auto sha512 = sha512_in_digests(read_file(verified.path), image_name);
        if (!sha512) throw Error(request.url + ": lists no SHA512 of " + image_name);
        known = Json{{"url", request.url}, {"sha256", digests.sha256}, {"inline", request.inline_signed}};
        if (!signature.path.empty()) {
            known["signature_url"] = request.url + ".sig";
            known["signature_sha256"] = signature.sha256;
        }
        return *sha512;
    }

    static Release new_release(const std::string& distro, const std::string& arch, const std::string& version) {
        Release r;
        r.distro = distro;
        r.arch = arch;
        r.kernelversion = "1";  // uname -v: #1 SMP ...
        r.target = distro;
        r.variant = version;
        return r;
    }

    // Images by their paths or URLs (.../<board>/<version>/<flavour>_developer_container.bin.bz2);
    // a local image's version may come from version.txt beside it, and its kernel from the
    // kernel config beside it. Otherwise the kernel is named from the image's tree when built.
    ReleaseList batch_images(const BatchRequest& request, const Flavour& f) {
        ReleaseList list;
        std::map<std::string, std::string> taken;  // version -> the file taken for it
        for (const auto& file : request.files) {
            const fs::path path = file;
            const std::string name = path.filename().string();
            const Flavour* of = nullptr;
            for (const auto& candidate : kFlavours)
                if (name == candidate.image()) of = &candidate;
            if (!of) {
                list.unclaimed.push_back({file, "not a developer container image (" + f.image() + ")"});
                continue;
            }
            if (of != &f) {
                list.unclaimed.push_back({file, "a " + of->display + " image, not " + f.display + "'s"});
                continue;
            }
            const fs::path dir = path.parent_path();
            std::string version = dir.filename().string();
            const std::string board = dir.parent_path().filename().string();
            if (!is_version(version)) version = request.names_only ? "" : version_from_file(dir / "version.txt", f);
            if (version.empty()) {
                list.unclaimed.push_back({file,
                                          "names no version: neither its path (<board>/<version>/) nor a "
                                          "version.txt beside it"});
                continue;
            }
            if (board.size() > 4 && board.compare(board.size() - 4, 4, "-usr") == 0 &&
                board != board_of(request.arch)) {
                list.unclaimed.push_back(
                    {file, "an " + board + " image, not " + request.arch + "'s " + board_of(request.arch)});
                continue;
            }
            if (const auto it = taken.find(version); it != taken.end()) {
                list.unclaimed.push_back({file, "the same release as " + it->second});
                continue;
            }
            taken[version] = file;
            Release r = new_release(request.distro, request.arch, version);
            if (!request.names_only) {
                // Without the config beside it, the tree names the kernel once unpacked.
                const fs::path config = dir / f.config();
                if (const auto release =
                        fs::exists(config) ? release_from_config(read_file(config.string())) : std::nullopt)
                    r.release = *release;
            }
            Package p;
            p.name = f.image();
            (request.names_only ? p.url : p.path) = file;
            r.packages = {p};
            list.releases.push_back(std::move(r));
        }
        return list;
    }
};

}  // namespace

KBUILD_PLUGIN(CoreOS, "coreos", "0.1.0", "coreos", "flatcar", "coreos", "fedora-coreos")
