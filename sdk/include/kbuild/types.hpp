// The documents that cross the plugin ABI, as C++ types with their JSON form.
// One definition serves both sides: plugins (through plugin.hpp) and the kbuild host.
#pragma once

#include <kbuild/plugin_api.h>
#include <kbuild/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace kbuild {

using Json = nlohmann::json;

inline constexpr int kSchema = KBUILD_PLUGIN_SCHEMA;

// One package file of a kernel release: known by URL (crawl), by local path (batch), or both
// once fetched.
struct Package {
    std::string name;
    std::string url;
    std::string path;
    std::string sha256;
    std::int64_t size = -1;
    std::string sha512;  // ABI 1.4: checked like sha256 (a repository may list only SHA512)

    // Where it comes from, as messages and records name it: its URL, else its local path.
    const std::string& where() const { return url.empty() ? path : url; }
};

// A kernel release (`uname -r`) and the packages a module build needs for it.
struct Release {
    // `uname -r`; empty (ABI 1.3) when only the unpacked tree can tell it (a Flatcar image known
    // by URL alone): the host reads it from the tree before building.
    std::string release;
    std::string kernelversion;  // the #N of `uname -v`, where the distro has one
    std::string distro;
    std::string arch;
    std::vector<Package> packages;
    std::string unavailable;  // non-empty: a needed package is missing, and why
    std::string target;       // the driverkit-style target ("ubuntu-aws"); "" means the distro
    // What tells apart two builds of one release, "" when there is one: Ubuntu builds
    // 5.15.0-1036-aws for jammy (5.15.0-1036.40) and as a focal backport (variant "20.04.1" of
    // 5.15.0-1036.40~20.04.1), with other compilers.
    std::string variant;
    // ABI 1.7: a kernel shipped as source. `packages` are then its source (a kernel.org
    // tarball, say), and this the config it is built with; the host prepares the tree (make
    // olddefconfig modules_prepare, LOCALVERSION set so that its release is `release`) in the
    // builder of the compiler the config names. Left out of the document when unset. A config
    // with a relative path and no URL is a file the plugin's unpack puts in the unpacked root
    // (a distro that ships it inside another package). A source release left unnamed is named
    // by <root>/kernel.release when the unpack writes one, else by the source's version and
    // the config's CONFIG_LOCALVERSION.
    Package config;
    bool is_source() const { return !config.url.empty() || !config.path.empty(); }
};

// A release as targets are keyed: "5.15.0-1036-aws", or "5.15.0-1036-aws~20.04.1"; the variant
// alone ("3510.2.0") while only the unpacked tree can name the kernel.
inline std::string release_id(const Release& r) {
    if (r.release.empty()) return r.variant;
    return r.variant.empty() ? r.release : r.release + "~" + r.variant;
}

// A file batch_packages could not place in any release.
struct Unclaimed {
    std::string file;
    std::string reason;
};

struct ReleaseList {
    std::vector<Release> releases;
    std::vector<Unclaimed> unclaimed;
    // What could not be read (an index failing its checksum...), one line each; the releases
    // found elsewhere are still listed.
    std::vector<std::string> errors;
};

using Options = std::map<std::string, std::string>;

struct CrawlRequest {
    std::string distro;
    std::string arch = "amd64";
    std::vector<std::string> mirrors;      // the user's (--mirror); empty: the plugin's default
    std::vector<std::string> apt_mirrors;  // the host's apt sources, a default a plugin may use
    Options options;
    // The build host's architecture, as dpkg names it ("amd64"; ABI 1.8, "" from older hosts):
    // when it is not arch, the build cross-compiles, and the programs it runs (host tools) must
    // be the build host's.
    std::string host_arch;
};

struct BatchRequest {
    std::string distro;
    std::string arch = "amd64";
    std::vector<std::string> files;
    bool names_only = false;  // files are URLs or names whose contents are not here
    Options options;
    std::string host_arch;  // as CrawlRequest's
};

struct UnpackRequest {
    Release release;
    std::string dest;
};

struct UnpackResult {
    std::string root;
};

struct KernelDirRequest {
    std::string release;
    std::string root;
};

struct KernelDir {
    std::string kernel_dir;
    // ABI 1.5: the tree names nothing of itself by absolute path (a kernel bundle's), so the
    // host builds it where it lies, mounted whole.
    bool self_contained = false;
};

struct ConfigHashRequest {
    std::string release;
    std::string root;
    std::string kernel_dir;
};

struct ConfigHash {
    std::string config;  // path of the .config that was hashed
    std::string md5;
};

struct OptionInfo {
    std::string name;
    std::string help;
    std::string default_value;
};

// A driverkit-style target a plugin serves (ABI 1.5) and the distro whose crawl lists it. The
// name may hold one placeholder, "<word>": "ubuntu-<flavour>" (see target_matches).
struct TargetInfo {
    std::string name;
    std::string distro;
};

struct Description {
    std::vector<OptionInfo> options;
    std::vector<TargetInfo> targets;  // ABI 1.5; empty: each distro is its own target
    // ABI 1.6: distro -> the OpenPGP keyrings its archives are signed with, checked when the
    // user names none (--keyring, the config's keyring); those of distros the plugin does not
    // serve here are ignored.
    std::map<std::string, std::vector<std::string>> keyrings;
};

// Whether a target name matches a declared target: equal, or, where the declaration holds a
// "<word>" placeholder, the text around it equal and the placeholder standing for one or more
// letters, digits, '.', '_' or '+'.
inline bool target_matches(const std::string& declared, const std::string& name) {
    const size_t open = declared.find('<');
    const size_t close = open == std::string::npos ? open : declared.find('>', open);
    if (close == std::string::npos) return declared == name;
    const std::string head = declared.substr(0, open), tail = declared.substr(close + 1);
    if (name.size() <= head.size() + tail.size()) return false;
    if (name.compare(0, head.size(), head) != 0) return false;
    if (name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return false;
    for (size_t i = head.size(); i < name.size() - tail.size(); ++i) {
        const char c = name[i];
        const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '+';
        if (!word) return false;
    }
    return true;
}

// What order_releases (ABI 1.5) is asked, and its answer: the request's indices, newest first.
struct ReleaseOrderRequest {
    std::string distro;
    std::vector<Release> releases;
};

struct ReleaseOrder {
    std::vector<std::size_t> order;
};

// What a plugin asks of the host's extract service, and its answer.
struct ExtractRequest {
    std::string archive;
    std::string dest;
    std::string member = "data";  // .deb only: "data" or "control"
};

struct ExtractResult {
    std::string dest;
    std::int64_t entries = 0;
};

// What a plugin asks of the host's extract_image service, and its answer.
struct ImageExtractRequest {
    std::string image;
    std::string dest;
    std::vector<std::string> paths;  // image-relative, components may be globs
};

struct ImageExtractResult {
    std::string dest;
    std::int64_t entries = 0;
    std::vector<std::string> matched;  // the paths found
    std::string where;                 // which partition was read
};

// A downloaded file whose signature the host's verify service checks (ABI 1.4).
struct VerifyRequest {
    std::string file;            // the path fetch gave (kind rpm: a package the host handed over)
    std::string url;             // where it came from: names it, and picks the mirror's keyrings
    std::string signature;       // a detached signature's path; empty when inline or when none was found
    bool inline_signed = false;  // the file is clearsigned (an InRelease)
    bool required = true;        // false: with no key configured for this source, used unverified
    // "openpgp": the file's OpenPGP signature (inline or detached), checked with gpgv. "rpm": an
    // rpm package's own signature, checked with rpmkeys --checksig.
    std::string kind = "openpgp";
    // The URL (or path) of the one package this file vouches for: the package itself (kind
    // rpm), the image a Flatcar DIGESTS lists. Empty for a repository's metadata. An unverified
    // file is recorded against that package's target only.
    std::string package;
    // true: a detached signature that the source did not publish leaves the file unverified
    // rather than refused, even with a key configured (an rpm repository's repomd.xml, whose
    // packages carry their own signatures).
    bool signature_optional = false;
};

// What verify answers: the signed content, and who signed it or why it was not checked.
struct Verified {
    std::string path;        // a clearsigned file's signed text; else the file itself
    std::string signed_by;   // the signing key's fingerprint; empty when not checked
    std::string unverified;  // why not checked (an insecure mirror, no key configured)
};

// What the host's fetch service answers (it is asked with a Package: url, sha256, size).
struct FetchedFile {
    std::string path;
    std::string sha256;
    std::int64_t size = -1;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Package, name, url, path, sha256, size, sha512)
// Release's document is spelled by hand: "config" is left out when unset, so a release's
// document (which keys what was built from it) is what it was before ABI 1.7.
inline void to_json(Json& j, const Release& r) {
    j = {{"release", r.release},   {"kernelversion", r.kernelversion}, {"distro", r.distro}, {"arch", r.arch},
         {"packages", r.packages}, {"unavailable", r.unavailable},     {"target", r.target}, {"variant", r.variant}};
    if (r.is_source()) j["config"] = r.config;
}
inline void from_json(const Json& j, Release& r) {
    r.release = j.value("release", "");
    r.kernelversion = j.value("kernelversion", "");
    r.distro = j.value("distro", "");
    r.arch = j.value("arch", "");
    r.packages = j.value("packages", std::vector<Package>{});
    r.unavailable = j.value("unavailable", "");
    r.target = j.value("target", "");
    r.variant = j.value("variant", "");
    r.config = j.value("config", Package{});
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Unclaimed, file, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReleaseList, releases, unclaimed, errors)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CrawlRequest, distro, arch, mirrors, apt_mirrors, options, host_arch)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BatchRequest, distro, arch, files, names_only, options, host_arch)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(UnpackRequest, release, dest)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(UnpackResult, root)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KernelDirRequest, release, root)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KernelDir, kernel_dir, self_contained)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TargetInfo, name, distro)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReleaseOrderRequest, distro, releases)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReleaseOrder, order)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConfigHashRequest, release, root, kernel_dir)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConfigHash, config, md5)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(OptionInfo, name, help, default_value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Description, options, targets, keyrings)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FetchedFile, path, sha256, size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ExtractRequest, archive, dest, member)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Verified, path, signed_by, unverified)

// "inline" is a C++ keyword: VerifyRequest's document is spelled by hand.
inline void to_json(Json& j, const VerifyRequest& r) {
    j = {{"file", r.file},           {"url", r.url},
         {"signature", r.signature}, {"inline", r.inline_signed},
         {"required", r.required},   {"kind", r.kind},
         {"package", r.package},     {"signature_optional", r.signature_optional}};
}
inline void from_json(const Json& j, VerifyRequest& r) {
    r.file = j.value("file", "");
    r.url = j.value("url", "");
    r.signature = j.value("signature", "");
    r.inline_signed = j.value("inline", false);
    r.required = j.value("required", true);
    r.kind = j.value("kind", "openpgp");
    r.package = j.value("package", "");
    r.signature_optional = j.value("signature_optional", false);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ExtractResult, dest, entries)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ImageExtractRequest, image, dest, paths)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ImageExtractResult, dest, entries, matched, where)

// A document as it crosses the ABI: the value's fields plus "schema".
template <class T>
std::string to_document(const T& value) {
    Json j = value;
    j["schema"] = kSchema;
    return j.dump();
}

// Parses a document, refusing one of another schema; `what` names it in the error.
template <class T>
T from_document(const char* text, const char* what) {
    if (text == nullptr) throw Error(std::string(what) + ": no document");
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw Error(std::string(what) + ": not a JSON object");
    const int schema = j.value("schema", 0);
    if (schema != kSchema)
        throw Error(std::string(what) + ": schema " + std::to_string(schema) + ", expected " + std::to_string(kSchema));
    try {
        return j.get<T>();
    } catch (const Json::exception& e) {
        throw Error(std::string(what) + ": " + e.what());
    }
}

}  // namespace kbuild
