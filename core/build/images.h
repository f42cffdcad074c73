// kbuild's builder images: definitions (packaging/builders/<name>/builder.json + Dockerfile),
// built from a debootstrap root (or a rootfs tarball) imported into Docker, labelled with the
// hash of their definition; and the choice of image for a kernel's compiler.
#pragma once

#include "kernel/compiler.h"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kbuild {

class Docker;

struct BuilderDefinition {
    std::string name;    // image: kbuild/builder-<name>
    std::string family;  // debian, ubuntu, centos...
    int gcc = 0;         // gcc major version inside
    int clang = 0;       // clang major version inside (its LLVM tools first on PATH); 0: none
    std::string cc;      // the compiler command, passed as CC=
    // Kernel architectures it cross-compiles for, each with its tools' prefix (CROSS_COMPILE=):
    // {"arm64": "aarch64-linux-gnu-"}. A gcc image's cross compiler is <prefix><cc>.
    std::map<std::string, std::string> cross;
    std::string debootstrap_suite;  // base from debootstrap, or
    std::filesystem::path rootfs;   // base from a root file system tarball
    std::filesystem::path dir;      // the definition's directory (the build context)
    std::string hash;               // sha256 of the directory's files

    std::string image() const { return "kbuild/builder-" + name + ":latest"; }
};

// A builder image present in Docker (read back from its labels).
struct BuilderImage {
    std::string name, image, family, cc, definition_hash, created;
    int gcc = 0;
    int clang = 0;
    std::map<std::string, std::string> cross;  // as BuilderDefinition::cross
    std::int64_t size = 0;
};

// "arm64=aarch64-linux-gnu-,riscv=riscv64-linux-gnu-", as the image's label holds it, and back.
std::string cross_label(const std::map<std::string, std::string>& cross);
std::map<std::string, std::string> parse_cross_label(const std::string& label);

// Definitions in each directory (one subdirectory each); a later directory's definition of the
// same name replaces an earlier one. Throws kbuild::Error naming a malformed builder.json.
std::vector<BuilderDefinition> load_definitions(const std::vector<std::filesystem::path>& dirs);

// <dir of kbuild>/../share/kbuild/builders: installed, and in a build tree (a link to the
// source tree's packaging/builders).
std::vector<std::filesystem::path> default_builder_dirs();

// Labels kbuild puts on its images.
inline const char* const kLabelBuilder = "kbuild.builder";
inline const char* const kLabelGcc = "kbuild.gcc";
inline const char* const kLabelClang = "kbuild.clang";
inline const char* const kLabelCc = "kbuild.cc";
inline const char* const kLabelFamily = "kbuild.family";
inline const char* const kLabelCross = "kbuild.cross";
inline const char* const kLabelHash = "kbuild.definition-hash";

// The tagged images carrying kLabelBuilder; an untagged one is a replaced build, left out.
std::vector<BuilderImage> list_builder_images(const Docker& docker);

struct ImageBuildOptions {
    std::filesystem::path work_dir;  // debootstrap roots go here (removed after import)
    std::string mirror;              // debootstrap mirror; empty: from apt's sources
    bool force = false;              // rebuild even when the definition is unchanged
    // Bases imported by this run (one debootstrap of a suite serves its every definition, even
    // with force). Null: none is tracked.
    std::set<std::string>* imported = nullptr;
};

// Builds one image unless one with the same definition hash exists. Returns false when it was
// up to date. The images the new one and its new base replace are removed (one a container
// still uses stays, with a warning). Logs progress. Throws kbuild::Error naming the builder and
// the failing step.
bool build_builder_image(const Docker& docker, const BuilderDefinition& definition, const ImageBuildOptions& options);

// A user's root file system with its compiler (kbuild images build --rootfs): a compiler no
// Debian suite ships (gcc 4.8 of CentOS 7, 7 of Amazon Linux 2, 8 of RHEL 8).
struct RootfsImage {
    std::string name;               // image: kbuild/builder-<name>
    std::filesystem::path tarball;  // the root file system
    std::string family;
    int gcc = 0, clang = 0;                    // one of them: the compiler major inside
    std::string cc;                            // empty: gcc, or clang
    std::map<std::string, std::string> cross;  // as BuilderDefinition::cross
};

// --cross values, "arm64=aarch64-linux-gnu-", as BuilderDefinition::cross; throws UsageError
// naming one that is not ARCH=PREFIX.
std::map<std::string, std::string> parse_cross_option(const std::vector<std::string>& values);

// Writes its definition under `dir`/<name> (builder.json naming the tarball and its sha256, so
// a changed tarball is rebuilt; a Dockerfile that only sets the build user and directory, as
// the root may have no shell) and returns it. Throws UsageError naming what is wrong.
BuilderDefinition write_rootfs_definition(const std::filesystem::path& dir, const RootfsImage& rootfs);

// Runs `<cc> -dumpversion` in the built image, and for a gcc image each cross compiler's
// (`<prefix><cc>`): an Error naming the image, the command and the version it gave when its
// major is not the definition's (or it does not run).
void check_image_compiler(const Docker& docker, const BuilderDefinition& definition);

// Removes the definition's image, and its base unless it is a debootstrap base other images share.
void remove_builder_image(const Docker& docker, const BuilderDefinition& definition);

// The image for a kernel: the same compiler major (preferring `family`), else the nearest
// newer, else the nearest older. A kernel built by clang takes only an image with clang, none
// when there is none; a kernel of another architecture (`cross`: its ARCH, "" for this host's)
// only an image that cross-compiles for it. `why` says which and why, in one line.
std::optional<BuilderImage> choose_builder_image(const std::vector<BuilderImage>& images,
                                                 const KernelCompiler& compiler, const std::string& family,
                                                 std::string& why, const std::string& cross = "");

}  // namespace kbuild
