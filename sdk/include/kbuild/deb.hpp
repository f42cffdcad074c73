// What every deb-family plugin needs: dpkg version comparison, a streaming deb822 reader
// (Packages indexes, plain or .xz/.gz, read without a temporary file), Release/InRelease with
// their SHA256 lists, and Depends parsing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbuild::deb {

// dpkg's ordering of versions ([epoch:]upstream[-revision], '~' before anything, letters
// before non-letters): <0, 0, >0 like strcmp. Same answers as `dpkg --compare-versions`.
int compare_versions(std::string_view a, std::string_view b);

// One deb822 paragraph. Views point into the reader's buffer: valid during the callback only.
// Field names compare case-insensitively; continuation lines stay in the value, with their
// leading space and newlines, as dpkg keeps them (a value that starts on the line after its
// name keeps that leading "\n"); blanks around a value are trimmed.
class Paragraph {
public:
    using Field = std::pair<std::string_view, std::string_view>;  // name, value

    std::string_view get(std::string_view field) const;  // the first such field; "" when absent
    bool has(std::string_view field) const;
    const std::vector<Field>& fields() const { return fields_; }

    // For readers: fill from one paragraph's text (no blank lines inside). Lines that are not
    // "Name: value" or a continuation are skipped ('#' comments among them).
    void parse(std::string_view text);

private:
    std::vector<Field> fields_;
};

using ParagraphFn = std::function<void(const Paragraph&)>;

// Reads every paragraph of a deb822 file: plain text, or xz / gzip compressed (told by the
// magic bytes, not the name), streaming in 1 MiB chunks. Paragraphs end at empty lines (or lines
// of only blanks). Throws kbuild::Error naming the file on I/O or decompression errors (a
// truncated .xz is an error, not a short read; paragraphs before the damage have been passed to
// fn by then).
void read_paragraphs(const std::string& path, const ParagraphFn& fn);

// The same over text in memory.
void read_paragraphs_text(std::string_view text, const ParagraphFn& fn);

// One file listed in a Release file, by SHA256 or SHA512 or both (Ubuntu's development
// series lists only SHA512).
struct IndexFile {
    std::string sha256;
    std::string sha512;
    std::int64_t size = 0;
};

// A Release file, or the signed text of an InRelease: parse only text the host's verify
// service gave back (a clearsigned message is refused here, so a signature is never skipped).
struct ReleaseFile {
    std::string origin, suite, codename, date, valid_until;
    std::vector<std::string> architectures, components;
    std::map<std::string, IndexFile> files;  // path relative to the suite dir -> entry
};

// Throws kbuild::Error when the text is a clearsigned message rather than its verified text.
ReleaseFile parse_release(std::string_view text);

// Seconds since the epoch of a Release's Date or Valid-Until ("Sat, 10 Aug 2024 09:37:29 UTC",
// RFC 2822 with a zone name or offset); nullopt when it is not such a date.
std::optional<std::int64_t> release_time(std::string_view date);

// One relation of a Depends-style field: "name (op version) [arch]".
struct Relation {
    std::string name;
    std::string op;       // "", "<<", "<=", "=", ">=", ">>"
    std::string version;  // "" when op is empty
};

// "a (>= 1) | b, c" -> {{a>=1, b}, {c}}: an AND of OR-groups. Architecture qualifiers
// (":any", ":native", ":amd64"), architecture lists and build profiles are dropped; the obsolete
// "<" and ">" read as "<=" and ">=", as dpkg reads them. Empty groups are skipped.
std::vector<std::vector<Relation>> parse_relations(std::string_view field);

}  // namespace kbuild::deb
