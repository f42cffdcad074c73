#include "build/images.h"

#include "build/docker.h"
#include "fetch/apt_sources.h"
#include "unpack/extract.h"
#include "util/error.h"
#include "util/process.h"

#include <kbuild/digest.hpp>
#include <kbuild/options.hpp>
#include <kbuild/types.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>
#include <fstream>
#include <map>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

std::string digest_directory(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    std::string manifest;
    for (const auto& file : files)
        manifest += fs::relative(file, dir).string() + " " + sha256_file(file.string()) + "\n";
    return sha256_text(manifest);
}

BuilderDefinition read_definition(const fs::path& dir) {
    const fs::path file = dir / "builder.json";
    std::ifstream in(file);
    const Json j = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    auto fail = [&](const std::string& why) { return Error(file.string() + ": " + why); };
    if (!j.is_object()) throw fail("not a JSON object");
    BuilderDefinition d;
    d.dir = dir;
    d.name = j.value("name", dir.filename().string());
    d.family = j.value("family", "");
    d.gcc = j.value("gcc", 0);
    d.clang = j.value("clang", 0);
    d.cc = j.value("cc", d.gcc > 0 ? "gcc-" + std::to_string(d.gcc) : "clang");
    if (d.gcc < 0 || d.clang < 0 || (d.gcc == 0 && d.clang == 0))
        throw fail("\"gcc\" must be the image's gcc major version (or \"clang\" its clang major)");
    if (d.name.empty() || d.name.find_first_of("/: ") != std::string::npos) throw fail("\"name\" must be a plain word");
    const Json cross = j.value("cross", Json::object());
    if (!cross.is_object()) throw fail("\"cross\" must map kernel architectures to their tools' prefix");
    for (const auto& [arch, prefix] : cross.items()) {
        if (!prefix.is_string() || prefix.get<std::string>().empty() || arch.empty() ||
            (arch + prefix.get<std::string>()).find_first_of("=, ") != std::string::npos)
            throw fail("\"cross\": " + arch + " must name its tools' prefix, as \"aarch64-linux-gnu-\"");
        d.cross[arch] = prefix.get<std::string>();
    }
    const Json base = j.value("base", Json::object());
    d.debootstrap_suite = base.value("debootstrap", "");
    const std::string rootfs = base.value("rootfs", "");
    if (!rootfs.empty()) d.rootfs = fs::path(rootfs).is_absolute() ? fs::path(rootfs) : dir / rootfs;
    if (d.debootstrap_suite.empty() == d.rootfs.empty())
        throw fail("\"base\" needs exactly one of \"debootstrap\" or \"rootfs\"");
    if (!fs::is_regular_file(dir / "Dockerfile")) throw fail("no Dockerfile beside it");
    d.hash = digest_directory(dir);
    return d;
}

std::string debootstrap_mirror(const std::string& suite) {
    const auto sources = read_apt_sources();
    for (const auto& source : sources)
        if (std::find(source.suites.begin(), source.suites.end(), suite) != source.suites.end()) return source.uri;
    if (sources.empty()) throw Error("no apt sources to take a debootstrap mirror from; use --mirror");
    return sources.front().uri;
}

// The id of the image a tag names now; "" when there is none.
std::string image_id(const Docker& docker, const std::string& tag) {
    const auto image = docker.image(tag);
    return image ? image->id : "";
}

// A rebuild moves the tag to the new image and leaves the old one untagged: unusable by name,
// yet still labelled a builder (so counted and chosen as one) and taking its space. Removed
// unless it is the same image or something else still names it. A container still using it
// keeps it; that is said, not fatal, and list_builder_images ignores it meanwhile.
void remove_replaced(const Docker& docker, const std::string& old_id, const std::string& tag,
                     const std::string& builder) {
    if (old_id.empty() || old_id == image_id(docker, tag)) return;
    const auto old = docker.image(old_id);
    if (!old || !old->tags.empty()) return;
    try {
        docker.remove_image(old_id);
        spdlog::info("{}: removed the previous {} ({})", builder, tag, old_id.substr(0, 19));
    } catch (const Error& e) {
        spdlog::warn("{}: the previous {} ({}) stays: {}", builder, tag, old_id.substr(0, 19), e.what());
    }
}

// A debootstrap base is the suite's, shared by every definition over that suite (gcc and clang
// images of bookworm start from one root) and kept when only a Dockerfile changes; a rootfs
// base is its definition's.
std::string base_tag(const BuilderDefinition& d) {
    if (!d.debootstrap_suite.empty()) return "kbuild/base-debootstrap-" + d.debootstrap_suite + ":minbase";
    return "kbuild/base-" + d.name + ":" + d.hash.substr(0, 12);
}

// The base root file system, imported as base_tag(d).
std::string import_base(const Docker& docker, const BuilderDefinition& d, const ImageBuildOptions& options) {
    const std::string tag = base_tag(d);
    // --force starts from debootstrap, once per base in a run.
    const bool fresh = options.imported && options.imported->count(tag);
    if ((!options.force || fresh) && docker.image(tag)) return tag;
    const fs::path root = options.work_dir / (d.name + "-rootfs.part-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::create_directories(root);
    struct Cleanup {
        fs::path dir;
        ~Cleanup() {
            std::error_code e;
            fs::remove_all(dir, e);
        }
    } cleanup{root};
    if (!d.debootstrap_suite.empty()) {
        const std::string mirror = options.mirror.empty() ? debootstrap_mirror(d.debootstrap_suite) : options.mirror;
        spdlog::info("{}: debootstrap --variant=minbase {} from {}", d.name, d.debootstrap_suite, mirror);
        const fs::path log = options.work_dir / (d.name + "-debootstrap.log");
        ProcessOptions run;
        run.log = log;
        std::ofstream{log, std::ios::trunc}.close();  // each build's log starts empty
        const ProcessResult r =
            run_process({"debootstrap", "--variant=minbase", d.debootstrap_suite, root.string(), mirror}, run);
        if (r.exit_code != 0)
            throw Error(d.name + ": debootstrap " + d.debootstrap_suite + " failed (exit " +
                        std::to_string(r.exit_code) + "; see " + log.string() + ")");
    } else {
        spdlog::info("{}: unpacking {}", d.name, d.rootfs.string());
        extract_archive(d.rootfs, root);
    }
    spdlog::info("{}: importing the base as {}", d.name, tag);
    docker.import_directory(root, tag);
    if (options.imported) options.imported->insert(tag);
    return tag;
}

}  // namespace

std::vector<BuilderDefinition> load_definitions(const std::vector<fs::path>& dirs) {
    std::map<std::string, BuilderDefinition> by_name;
    for (const auto& dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        std::vector<fs::path> subdirs;
        for (const auto& entry : fs::directory_iterator(dir))
            if (entry.is_directory() && fs::exists(entry.path() / "builder.json")) subdirs.push_back(entry.path());
        std::sort(subdirs.begin(), subdirs.end());
        for (const auto& sub : subdirs) {
            BuilderDefinition d = read_definition(sub);
            by_name[d.name] = d;
        }
    }
    std::vector<BuilderDefinition> out;
    for (auto& [name, d] : by_name) out.push_back(std::move(d));
    return out;
}

BuilderDefinition write_rootfs_definition(const fs::path& dir, const RootfsImage& r) {
    if (r.name.empty() || r.name.find_first_of("/: ") != std::string::npos)
        throw UsageError("--name '" + r.name + "': want a plain word, the image is kbuild/builder-<name>");
    if ((r.gcc > 0) == (r.clang > 0)) throw UsageError("--rootfs: give the compiler inside, --gcc N or --clang N");
    std::error_code ec;
    if (!fs::is_regular_file(r.tarball, ec)) throw UsageError("--rootfs " + r.tarball.string() + ": no such file");
    const fs::path def = dir / r.name;
    fs::create_directories(def);
    Json j{{"name", r.name},
           {"family", r.family},
           {"cc", r.cc.empty() ? (r.gcc > 0 ? "gcc" : "clang") : r.cc},
           {"base", {{"rootfs", fs::absolute(r.tarball).string()}, {"sha256", sha256_file(r.tarball.string())}}}};
    j[r.gcc > 0 ? "gcc" : "clang"] = r.gcc > 0 ? r.gcc : r.clang;
    if (!r.cross.empty()) j["cross"] = r.cross;
    std::ofstream(def / "builder.json", std::ios::trunc) << j.dump(2) << "\n";
    // Builds run as uid 1000 in /build, as in the shipped images; nothing runs inside the root.
    std::ofstream(def / "Dockerfile", std::ios::trunc) << "ARG BASE\nFROM ${BASE}\nUSER 1000:1000\nWORKDIR /build\n";
    return read_definition(def);
}

std::map<std::string, std::string> parse_cross_option(const std::vector<std::string>& values) {
    std::map<std::string, std::string> cross;
    for (const auto& value : values) {
        const size_t eq = value.find('=');
        if (eq == 0 || eq == std::string::npos || eq + 1 == value.size() ||
            value.find_first_of(", ") != std::string::npos)
            throw UsageError("--cross " + value + ": want ARCH=PREFIX, as arm64=aarch64-linux-gnu-");
        cross[value.substr(0, eq)] = value.substr(eq + 1);
    }
    return cross;
}

void check_image_compiler(const Docker& docker, const BuilderDefinition& d) {
    const int want = d.gcc > 0 ? d.gcc : d.clang;
    const std::string compiler = d.gcc > 0 ? "gcc" : "clang";
    std::vector<std::string> commands{d.cc};
    if (d.gcc > 0)
        for (const auto& [arch, prefix] : d.cross) commands.push_back(prefix + d.cc);
    for (const auto& cc : commands) {
        ContainerSpec spec;
        spec.image = d.image();
        spec.command = {cc, "-dumpversion"};
        spec.labels = {{kLabelBuilder + std::string(".check"), d.name}};
        ContainerResult r;
        try {
            r = docker.run(spec, std::chrono::seconds(60));
        } catch (const Error& e) {  // the program is not there: the container does not start
            throw Error(d.name + ": `" + cc + " -dumpversion` does not run in " + d.image() + " (" + e.what() + ")");
        }
        const std::string version = r.output.substr(0, r.output.find_first_of("\r\n"));
        if (r.exit_code != 0)
            throw Error(d.name + ": `" + cc + " -dumpversion` does not run in " + d.image() + " (exit " +
                        std::to_string(r.exit_code) + ": " + version + ")");
        if (std::atoi(version.c_str()) != want)
            throw Error(d.name + ": `" + cc + " -dumpversion` in " + d.image() + " says " + version + ", not " +
                        compiler + " " + std::to_string(want));
    }
}

void remove_builder_image(const Docker& docker, const BuilderDefinition& d) {
    docker.remove_image(d.image());
    if (d.debootstrap_suite.empty()) docker.remove_image(base_tag(d));
}

std::vector<fs::path> default_builder_dirs() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    return {(exe.parent_path().parent_path() / "share" / "kbuild" / "builders").lexically_normal()};
}

std::vector<BuilderImage> list_builder_images(const Docker& docker) {
    std::vector<BuilderImage> out;
    for (const auto& image : docker.images({})) {
        const auto label = [&](const char* key) {
            const auto it = image.labels.find(key);
            return it == image.labels.end() ? std::string() : it->second;
        };
        // Untagged: a builder a rebuild replaced (see remove_replaced), never one to use.
        if (label(kLabelBuilder).empty() || image.tags.empty()) continue;
        BuilderImage b;
        b.name = label(kLabelBuilder);
        b.image = image.tags.front();
        b.family = label(kLabelFamily);
        b.cc = label(kLabelCc);
        b.definition_hash = label(kLabelHash);
        b.created = image.created;
        b.size = image.size;
        b.gcc = std::atoi(label(kLabelGcc).c_str());
        b.clang = std::atoi(label(kLabelClang).c_str());
        b.cross = parse_cross_label(label(kLabelCross));
        out.push_back(b);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

bool build_builder_image(const Docker& docker, const BuilderDefinition& d, const ImageBuildOptions& options) {
    if (!options.force) {
        if (auto existing = docker.image(d.image())) {
            const auto it = existing->labels.find(kLabelHash);
            if (it != existing->labels.end() && it->second == d.hash) {
                spdlog::info("{}: up to date ({} , definition {})", d.name, d.image(), d.hash.substr(0, 12));
                return false;
            }
        }
    }
    fs::create_directories(options.work_dir);
    const std::string old_image = image_id(docker, d.image());
    const std::string old_base = image_id(docker, base_tag(d));
    const std::string base = import_base(docker, d, options);
    spdlog::info("{}: building {} ({})", d.name, d.image(),
                 d.gcc > 0 ? "gcc " + std::to_string(d.gcc) : "clang " + std::to_string(d.clang));
    std::map<std::string, std::string> labels{{kLabelBuilder, d.name},
                                              {kLabelGcc, std::to_string(d.gcc)},
                                              {kLabelCc, d.cc},
                                              {kLabelFamily, d.family},
                                              {kLabelHash, d.hash}};
    if (d.clang > 0) labels[kLabelClang] = std::to_string(d.clang);
    if (!d.cross.empty()) labels[kLabelCross] = cross_label(d.cross);
    docker.build(d.dir, d.image(), {{"BASE", base}}, labels,
                 [&](const std::string& line) { spdlog::info("{}: {}", d.name, line); });
    // The old builder first: an image built from the old base holds it.
    remove_replaced(docker, old_image, d.image(), d.name);
    remove_replaced(docker, old_base, base, d.name);
    return true;
}

std::string cross_label(const std::map<std::string, std::string>& cross) {
    std::string label;
    for (const auto& [arch, prefix] : cross) label += (label.empty() ? "" : ",") + arch + "=" + prefix;
    return label;
}

std::map<std::string, std::string> parse_cross_label(const std::string& label) {
    std::map<std::string, std::string> cross;
    for (const auto& item : split_list(label)) {
        const size_t eq = item.find('=');
        if (eq != std::string::npos && eq > 0 && eq + 1 < item.size()) cross[item.substr(0, eq)] = item.substr(eq + 1);
    }
    return cross;
}

std::optional<BuilderImage> choose_builder_image(const std::vector<BuilderImage>& images,
                                                 const KernelCompiler& compiler, const std::string& family,
                                                 std::string& why, const std::string& cross) {
    const BuilderImage* best = nullptr;
    const auto version_of = [&](const BuilderImage& image) { return compiler.clang ? image.clang : image.gcc; };
    auto rank = [&](const BuilderImage& image) {
        // Lower is better: same version (preferred family first), then newer by distance, then older.
        const int distance = version_of(image) - compiler.major;
        const int tier = distance == 0 ? 0 : distance > 0 ? 1 : 2;
        return std::make_tuple(tier, std::abs(distance), image.family == family ? 0 : 1, image.name);
    };
    const auto fits = [&](const BuilderImage& image) { return cross.empty() || image.cross.count(cross) > 0; };
    bool any_of_kind = false;
    for (const auto& image : images) {
        any_of_kind = any_of_kind || version_of(image) > 0;
        if (version_of(image) > 0 && fits(image) && (!best || rank(image) < rank(*best))) best = &image;
    }
    const std::string kind = compiler.clang ? "clang" : "gcc";
    const std::string kernel = "kernel " + (cross.empty() ? "" : "for " + cross + " ") + "built by " + compiler.name() +
                               " (" + compiler.text + ")";
    if (!best) {
        why = kernel + (images.empty() ? "; no builder image (run kbuild images build)"
                        : !any_of_kind ? "; no builder image has " + kind + " (see packaging/builders)"
                                       : "; no builder image with " + kind + " cross-compiles for " + cross +
                                             " (see packaging/builders: \"cross\")");
        return std::nullopt;
    }
    const int has = version_of(*best);
    if (compiler.major == 0)
        why = compiler.text + " (a defconfig, or a kernel before 4.18): " + best->image + " has the oldest " + kind +
              ", " + kind + " " + std::to_string(has);
    else if (has == compiler.major)
        why = kernel + ": " + best->image + " has the same " + kind;
    else if (has > compiler.major)
        why = kernel + ": no image with " + compiler.name() + "; " + best->image + " has the nearest newer, " + kind +
              " " + std::to_string(has);
    else
        why = kernel + ": no image with " + compiler.name() + " or newer; " + best->image + " has the nearest older, " +
              kind + " " + std::to_string(has);
    return *best;
}

}  // namespace kbuild
