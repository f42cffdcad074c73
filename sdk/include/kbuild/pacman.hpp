// What a plugin for a pacman distribution (Arch Linux) needs: pacman's version order, package
// file names, a repository database (<repo>.db: a tar of <name>-<version>/desc files, plain or
// compressed with zstd, gzip, xz or bzip2) read as a stream, a local package's .PKGINFO, and
// crawling repositories laid out as Arch's mirrors are (<mirror>/<repo>/os/<arch>/<repo>.db).
//
// Trust: a database is checked against its detached <repo>.db.sig where the mirror publishes
// one (Arch's official ones do not; a configured key then records it unverified, as an rpm
// repository's repomd.xml), and each package downloaded against the database's %SHA256SUM% and
// %CSIZE%; before a package is unpacked, its own detached signature (<package>.sig, published
// for every official package) is checked through the host's verify.
//
// Errors are kbuild::Error with one line naming the file (or URL) and the cause.
#pragma once

#include <kbuild/plugin.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbuild::pacman {

// ---- versions ----

// pacman's order of "[epoch:]pkgver[-pkgrel]" (alpm_pkg_vercmp, what `vercmp` prints): the
// epoch (leading digits before ':', else 0), then pkgver, then pkgrel when both have one, each
// by pacman's rpmvercmp: runs of ASCII letters or digits compared in turn (digits numerically,
// a digit run newer than a letter run), separators only telling runs apart (a longer separator
// is newer); at the end a remaining letter run is older ("1.0a" < "1.0"), anything else newer.
// <0, 0, >0 like strcmp.
int compare_versions(std::string_view a, std::string_view b);

// ---- packages ----

// One package as a database's desc, a package's .PKGINFO or a file name describes it.
struct Entry {
    std::string name;
    std::string base;     // %BASE% (pkgbase): "linux" for linux-headers; "" when not known
    std::string version;  // [epoch:]pkgver-pkgrel
    std::string arch;     // x86_64, aarch64, any
    std::string filename;
    std::string sha256;  // %SHA256SUM%; "" when not known
    std::int64_t csize = -1;
    std::string pgpsig;  // %PGPSIG%, base64; "" when none
    // Where the package is: crawl sets url, sha256 and size (the host's fetch checks them); a
    // batch sets path (a local file) or url (a name).
    kbuild::Package file;
};

// "<name>-<pkgver>-<pkgrel>-<arch>.pkg.tar[.zst|.xz|.gz|.bz2|...]", alone or as the last part
// of a path or URL (an escaped ':' of an epoch, "%3A", undone): name, version, arch and
// filename set; nullopt for anything else. pkgrel is a number with at most one '.', as makepkg
// allows, which is what tells "linux-headers-6.9.7-x86_64..." (no pkgrel) from a package.
std::optional<Entry> parse_file_name(const std::string& file);

// One desc file: "%FIELD%" lines, each followed by its values up to a blank line. `where` (the
// database and the entry) names it in errors. Requires %NAME%, %VERSION% and %FILENAME% (a
// plain file name), and checks %CSIZE% (a number) and %SHA256SUM% (64 hex digits) where given.
Entry parse_desc(std::string_view text, const std::string& where);

// Which package names a reader keeps.
using NameFilter = std::function<bool(std::string_view name)>;

struct Database {
    std::vector<Entry> entries;       // the wanted ones, in the database's order
    std::vector<std::string> errors;  // wanted entries that could not be read, each named
};

// Reads a repository database from `path` as a stream (no temporary file), keeping the
// entries whose %NAME% is wanted (another package's desc, by its directory's name, is not read); a wanted entry that is malformed, or has no %SHA256SUM% or
// %CSIZE%, is an error of the result naming `where` and the entry. Throws (naming `where`)
// when the file is not a readable database.
Database read_database(const std::string& path, const std::string& where, const NameFilter& wanted);

// A local package file's .PKGINFO (pkgname, pkgbase, pkgver, arch), read in process; filename
// and file.path are the file's. Throws naming the file when it is not a package.
Entry read_package_info(const std::string& path);

// amd64 -> x86_64, arm64 -> aarch64; other names pass unchanged.
std::string pacman_arch(const std::string& arch);

// ---- repositories ----

struct RepoQuery {
    std::vector<std::string> mirrors;
    std::vector<std::string> repos;  // "core", "extra"
    std::string arch;                // pacman's name: x86_64
    // Where a repository's database lies under a mirror: {repo} and {arch} replaced.
    std::string layout = "{repo}/os/{arch}";
};

struct Crawled {
    std::vector<Entry> entries;       // of the query's arch or "any", file.url/sha256/size set
    std::vector<std::string> errors;  // repositories (or entries) that could not be read, each named
};

// Reads <mirror>/<layout>/<repo>.db for every repository and mirror: checked against its
// <repo>.db.sig when the mirror publishes one (Host::verify: required with a key configured
// for the distro once a signature is there; with none, used and recorded unverified), then read
// by read_database. A repository a mirror lacks is skipped (a debug line); one whose signature
// fails, or whose database cannot be read, is an error of the result, nothing of it used.
// Throws when no repository could be read at all.
Crawled crawl_repos(const Host& host, const RepoQuery& query, const NameFilter& wanted);

// Each package's own detached signature checked through the host's verify (<url>.sig for a
// downloaded one, <path>.sig beside a local file; required with a key configured, else used
// and recorded unverified), then its data extracted into the one root the host gave.
UnpackResult unpack(const Host& host, const UnpackRequest& request);

}  // namespace kbuild::pacman
