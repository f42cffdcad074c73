#include <kbuild/pacman.hpp>

#include "repo_util.h"

#include <archive.h>
#include <archive_entry.h>

#include <cctype>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

namespace kbuild::pacman {
namespace {

using detail::trim_slash;

bool digit(char c) {
    return c >= '0' && c <= '9';
}
bool alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool alnum(char c) {
    return digit(c) || alpha(c);
}

// pacman's rpmvercmp (lib/libalpm/version.c), over one epoch, pkgver or pkgrel.
int rpmvercmp(std::string_view a, std::string_view b) {
    if (a == b) return 0;
    size_t one = 0, two = 0, ptr1 = 0, ptr2 = 0;
    while (one < a.size() && two < b.size()) {
        while (one < a.size() && !alnum(a[one])) ++one;
        while (two < b.size() && !alnum(b[two])) ++two;
        if (one == a.size() || two == b.size()) break;
        // Separators of different lengths: the longer is newer.
        if (one - ptr1 != two - ptr2) return one - ptr1 < two - ptr2 ? -1 : 1;
        ptr1 = one;
        ptr2 = two;
        const bool number = digit(a[ptr1]);
        const auto same_kind = [number](char c) { return number ? digit(c) : alpha(c); };
        while (ptr1 < a.size() && same_kind(a[ptr1])) ++ptr1;
        while (ptr2 < b.size() && same_kind(b[ptr2])) ++ptr2;
        // A digit run is newer than a letter run.
        if (two == ptr2) return number ? 1 : -1;
        std::string_view x = a.substr(one, ptr1 - one), y = b.substr(two, ptr2 - two);
        if (number) {
            while (!x.empty() && x.front() == '0') x.remove_prefix(1);
            while (!y.empty() && y.front() == '0') y.remove_prefix(1);
            if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
        }
        if (const int rc = x.compare(y); rc != 0) return rc < 0 ? -1 : 1;
        one = ptr1;
        two = ptr2;
    }
    if (one == a.size() && two == b.size()) return 0;
    // A remaining letter run never beats the end: "1.0a" < "1.0", "1.0" < "1.0.1".
    if ((one == a.size() && !(two < b.size() && alpha(b[two]))) || (one < a.size() && alpha(a[one]))) return -1;
    return 1;
}

struct Evr {
    std::string_view epoch, version, release;
    bool has_release = false;
};

// parseEVR: leading digits before ':' are the epoch (else "0"), the last '-' after them starts
// the release.
Evr parse_evr(std::string_view evr) {
    Evr out;
    size_t s = 0;
    while (s < evr.size() && digit(evr[s])) ++s;
    const size_t dash = evr.rfind('-');
    const size_t se = dash != std::string_view::npos && dash >= s ? dash : std::string_view::npos;
    const size_t end = se == std::string_view::npos ? evr.size() : se;
    if (s < evr.size() && evr[s] == ':') {
        out.epoch = s == 0 ? std::string_view("0") : evr.substr(0, s);
        out.version = evr.substr(s + 1, end - s - 1);
    } else {
        out.epoch = "0";
        out.version = evr.substr(0, end);
    }
    if (se != std::string_view::npos) {
        out.release = evr.substr(se + 1);
        out.has_release = true;
    }
    return out;
}

std::string last_part(const std::string& file) {
    std::string name = file.substr(file.find_last_of('/') + 1);
    for (size_t at; (at = name.find("%3A")) != std::string::npos || (at = name.find("%3a")) != std::string::npos;)
        name.replace(at, 3, ":");
    return name;
}

bool hex64(const std::string& text) {
    if (text.size() != 64) return false;
    for (const char c : text)
        if (!digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F')) return false;
    return true;
}

// A libarchive reader of tar archives, any compression it knows.
using Reader = std::unique_ptr<struct archive, int (*)(struct archive*)>;

Reader open_tar(const std::string& path, const std::string& where) {
    Reader reader(archive_read_new(), archive_read_free);
    if (!reader) throw Error(where + ": libarchive: out of memory");
    // The compressions pacman writes, read in process (filter_all would run external
    // programs for lrzip, lzop and the like).
    archive_read_support_filter_gzip(reader.get());
    archive_read_support_filter_bzip2(reader.get());
    archive_read_support_filter_xz(reader.get());
    archive_read_support_filter_lzma(reader.get());
    archive_read_support_filter_zstd(reader.get());
    archive_read_support_filter_lz4(reader.get());
    archive_read_support_format_tar(reader.get());  // ustar, pax and GNU tar alike
    if (archive_read_open_filename(reader.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK)
        throw Error(where + ": " + archive_error_string(reader.get()));
    return reader;
}

std::string read_member(struct archive* reader, const std::string& where, const std::string& member) {
    std::string text;
    char block[16 * 1024];
    for (la_ssize_t n; (n = archive_read_data(reader, block, sizeof block)) != 0;) {
        if (n < 0) throw Error(where + ": " + member + ": " + archive_error_string(reader));
        text.append(block, static_cast<size_t>(n));
        if (text.size() > 16 * 1024 * 1024) throw Error(where + ": " + member + ": larger than 16 MiB");
    }
    return text;
}

// repository metadata, checked against <db>.sig where published.
void verify_database(const Host& host, const std::string& url, const std::string& path) {
    VerifyRequest request;
    request.file = path;
    request.url = url;
    request.required = false;
    request.signature_optional = true;
    try {
        request.signature = host.fetch({"db.sig", url + ".sig"}).path;
    } catch (const Error& e) {
        host.debug(std::string(e.what()) + ": the database has no detached signature");
    }
    const Verified verified = host.verify(request);
    host.debug(url + (verified.signed_by.empty() ? ": not verified (" + verified.unverified + ")"
                                                 : ": signed by " + verified.signed_by));
}

}  // namespace

int compare_versions(std::string_view a, std::string_view b) {
    if (a == b) return 0;
    const Evr x = parse_evr(a), y = parse_evr(b);
    int rc = rpmvercmp(x.epoch, y.epoch);
    if (rc == 0) rc = rpmvercmp(x.version, y.version);
    if (rc == 0 && x.has_release && y.has_release) rc = rpmvercmp(x.release, y.release);
    return rc;
}

std::optional<Entry> parse_file_name(const std::string& file) {
    static const std::regex shape(
        R"(^([A-Za-z0-9@_+][A-Za-z0-9@._+-]*)-((?:\d+:)?[^-/:]+)-(\d+(?:\.\d+)?)-([A-Za-z0-9_]+)\.pkg\.tar(\.(zst|xz|gz|bz2|lz4|lzo|lrz|Z))?$)");
    const std::string name = last_part(file);
    std::smatch m;
    if (!std::regex_match(name, m, shape)) return std::nullopt;
    Entry entry;
    entry.name = m[1];
    entry.version = std::string(m[2]) + "-" + std::string(m[3]);
    entry.arch = m[4];
    entry.filename = name;
    return entry;
}

Entry parse_desc(std::string_view text, const std::string& where) {
    Entry entry;
    std::istringstream in{std::string(text)};
    std::string field;
    std::vector<std::string> values;
    const auto take = [&] {
        if (field.empty()) return;
        static const std::set<std::string> single = {"%NAME%",     "%BASE%",  "%VERSION%",  "%ARCH%",
                                                     "%FILENAME%", "%CSIZE%", "%SHA256SUM%"};
        if (values.size() > 1 && single.count(field)) throw Error(where + ": " + field + " has more than one value");
        const std::string one = values.empty() ? "" : values.front();
        if (field == "%NAME%") entry.name = one;
        if (field == "%BASE%") entry.base = one;
        if (field == "%VERSION%") entry.version = one;
        if (field == "%ARCH%") entry.arch = one;
        if (field == "%FILENAME%") entry.filename = one;
        if (field == "%SHA256SUM%") entry.sha256 = one;
        if (field == "%PGPSIG%") entry.pgpsig = one;
        if (field == "%CSIZE%") {
            if (one.empty() || one.size() > 18 || one.find_first_not_of("0123456789") != std::string::npos)
                throw Error(where + ": %CSIZE% '" + one + "' is not a size");
            entry.csize = std::stoll(one);
        }
        field.clear();
        values.clear();
    };
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
            take();
        } else if (field.empty()) {
            if (line.size() < 3 || line.front() != '%' || line.back() != '%')
                throw Error(where + ": '" + line + "' where a %FIELD% line was expected");
            field = line;
        } else {
            values.push_back(line);
        }
    }
    take();
    if (entry.name.empty()) throw Error(where + ": no %NAME%");
    if (entry.version.empty()) throw Error(where + ": no %VERSION%");
    if (entry.filename.empty()) throw Error(where + ": no %FILENAME%");
    // The file name is joined to the repository's URL: nothing may lead elsewhere.
    if (entry.filename.find('/') != std::string::npos || entry.filename == "." || entry.filename == ".." ||
        entry.filename.find_first_of("?#%\\") != std::string::npos)
        throw Error(where + ": %FILENAME% '" + entry.filename + "' is not a plain file name");
    if (!entry.sha256.empty() && !hex64(entry.sha256))
        throw Error(where + ": %SHA256SUM% '" + entry.sha256 + "' is not a sha256");
    return entry;
}

Database read_database(const std::string& path, const std::string& where, const NameFilter& wanted) {
    Reader reader = open_tar(path, where);
    Database db;
    struct archive_entry* member = nullptr;
    for (int rc; (rc = archive_read_next_header(reader.get(), &member)) != ARCHIVE_EOF;) {
        if (rc < ARCHIVE_WARN) throw Error(where + ": " + archive_error_string(reader.get()));
        const char* raw = archive_entry_pathname(member);
        const std::string name = raw == nullptr ? "" : raw;
        // <name>-<version>/desc; the rest (directories, files lists of a .files database) is
        // not read.
        if (archive_entry_filetype(member) != AE_IFREG || name.size() < 5 || name.compare(name.size() - 5, 5, "/desc"))
            continue;
        // An entry is <name>-<pkgver>-<pkgrel>/: another package's is not read.
        const size_t rel = name.rfind('-', name.size() - 6);
        const size_t ver = rel == std::string::npos || rel == 0 ? rel : name.rfind('-', rel - 1);
        if (ver != std::string::npos && !wanted(std::string_view(name).substr(0, ver))) continue;
        const std::string text = read_member(reader.get(), where, name);
        try {
            Entry entry = parse_desc(text, where + ": " + name);
            if (!wanted(entry.name)) continue;
            if (entry.sha256.empty()) throw Error(where + ": " + name + ": no %SHA256SUM%");
            if (entry.csize < 0) throw Error(where + ": " + name + ": no %CSIZE%");
            if (entry.arch.empty()) throw Error(where + ": " + name + ": no %ARCH%");
            db.entries.push_back(std::move(entry));
        } catch (const Error& e) {
            db.errors.emplace_back(e.what());
        }
    }
    return db;
}

Entry read_package_info(const std::string& path) {
    Reader reader = open_tar(path, path);
    struct archive_entry* member = nullptr;
    for (int rc; (rc = archive_read_next_header(reader.get(), &member)) != ARCHIVE_EOF;) {
        if (rc < ARCHIVE_WARN) throw Error(path + ": " + archive_error_string(reader.get()));
        const char* raw = archive_entry_pathname(member);
        const std::string name = raw == nullptr ? "" : raw;
        if (name != ".PKGINFO" && name != "./.PKGINFO") continue;
        Entry entry;
        std::istringstream in(read_member(reader.get(), path, ".PKGINFO"));
        for (std::string line; std::getline(in, line);) {
            const size_t eq = line.find(" = ");
            if (line.empty() || line.front() == '#' || eq == std::string::npos) continue;
            const std::string key = line.substr(0, eq), value = line.substr(eq + 3);
            if (key == "pkgname") entry.name = value;
            if (key == "pkgbase") entry.base = value;
            if (key == "pkgver") entry.version = value;
            if (key == "arch") entry.arch = value;
        }
        if (entry.name.empty() || entry.version.empty() || entry.arch.empty())
            throw Error(path + ": .PKGINFO lacks pkgname, pkgver or arch");
        entry.filename = last_part(path);
        entry.file.name = entry.name;
        entry.file.path = path;
        return entry;
    }
    throw Error(path + ": not a pacman package (no .PKGINFO)");
}

std::string pacman_arch(const std::string& arch) {
    if (arch == "amd64") return "x86_64";
    if (arch == "arm64") return "aarch64";
    return arch;
}

Crawled crawl_repos(const Host& host, const RepoQuery& query, const NameFilter& wanted) {
    if (query.mirrors.empty()) throw Error("no mirror to crawl (give --mirror URL)");
    Crawled crawled;
    int read = 0;
    std::string miss;
    for (const auto& repo : query.repos) {
        std::string dir = query.layout;
        for (size_t at; (at = dir.find("{repo}")) != std::string::npos;) dir.replace(at, 6, repo);
        for (size_t at; (at = dir.find("{arch}")) != std::string::npos;) dir.replace(at, 6, query.arch);
        for (const auto& mirror : query.mirrors) {
            const std::string base = trim_slash(mirror) + "/" + dir;
            const std::string url = base + "/" + repo + ".db";
            FetchedFile db;
            try {
                db = host.fetch({repo + ".db", url});
            } catch (const Error& e) {
                host.debug(std::string(e.what()) + "; skipped");
                if (miss.empty()) miss = e.what();
                continue;
            }
            Database found;
            try {
                verify_database(host, url, db.path);
                found = read_database(db.path, url, wanted);
            } catch (const Error& e) {
                crawled.errors.emplace_back(e.what());
                continue;
            }
            ++read;
            host.debug("read " + url);
            crawled.errors.insert(crawled.errors.end(), found.errors.begin(), found.errors.end());
            for (auto& entry : found.entries) {
                if (entry.arch != query.arch && entry.arch != "any") continue;
                entry.file.name = entry.name;
                entry.file.url = base + "/" + entry.filename;
                entry.file.sha256 = entry.sha256;
                entry.file.size = entry.csize;
                crawled.entries.push_back(std::move(entry));
            }
        }
    }
    if (read == 0) throw detail::nothing_read("no repository could be read of", query.repos, crawled.errors, miss);
    return crawled;
}

UnpackResult unpack(const Host& host, const UnpackRequest& request) {
    for (const auto& package : request.release.packages) {
        VerifyRequest check;
        check.file = package.path;
        check.url = package.where();
        check.package = package.where();
        check.required = false;
        if (!package.url.empty()) {
            try {
                check.signature = host.fetch({"sig", package.url + ".sig"}).path;
            } catch (const Error& e) {
                host.debug(std::string(e.what()) + ": the package has no detached signature");
            }
        } else {
            // A local file is the user's (the host's verify takes no signature from beside it):
            // used, and recorded unverified.
            check.signature_optional = true;
        }
        const Verified verified = host.verify(check);
        host.debug(check.url + (verified.signed_by.empty() ? ": not verified (" + verified.unverified + ")"
                                                           : ": signed by " + verified.signed_by));
        host.extract({package.path, request.dest, "data"});
    }
    return {request.dest};
}

}  // namespace kbuild::pacman
