#include <kbuild/deb.hpp>

#include <kbuild/decompress.hpp>
#include <kbuild/types.hpp>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <sstream>

namespace kbuild::deb {
namespace {

// ---- version comparison ----

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A character's weight in dpkg's non-digit comparison: the end of the string sorts after '~'
// and before everything else, letters before non-letters.
int order(char c) {
    if (c == '\0' || is_digit(c)) return 0;
    if (is_alpha(c)) return static_cast<unsigned char>(c);
    if (c == '~') return -1;
    return static_cast<unsigned char>(c) + 256;
}

char char_at(std::string_view s, std::size_t i) {
    return i < s.size() ? s[i] : '\0';
}

// dpkg's verrevcmp: alternating non-digit runs (by order()) and digit runs (numerically).
int compare_fragment(std::string_view a, std::string_view b) {
    std::size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        while ((i < a.size() && !is_digit(a[i])) || (j < b.size() && !is_digit(b[j]))) {
            const int ac = order(char_at(a, i));
            const int bc = order(char_at(b, j));
            if (ac != bc) return ac - bc;
            ++i, ++j;
        }
        while (i < a.size() && a[i] == '0') ++i;
        while (j < b.size() && b[j] == '0') ++j;
        int first_difference = 0;
        while (i < a.size() && j < b.size() && is_digit(a[i]) && is_digit(b[j])) {
            if (first_difference == 0) first_difference = a[i] - b[j];
            ++i, ++j;
        }
        if (i < a.size() && is_digit(a[i])) return 1;
        if (j < b.size() && is_digit(b[j])) return -1;
        if (first_difference != 0) return first_difference;
    }
    return 0;
}

struct SplitVersion {
    unsigned long long epoch = 0;
    std::string_view upstream;
    std::string_view revision;
};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// As dpkg's parseversion: the epoch ends at the first ':', the revision starts after the last '-'.
SplitVersion split_version(std::string_view version) {
    version = trim(version);
    SplitVersion split;
    const std::size_t colon = version.find(':');
    if (colon != std::string_view::npos) {
        for (char c : version.substr(0, colon))
            if (is_digit(c)) split.epoch = split.epoch * 10 + static_cast<unsigned>(c - '0');
        version.remove_prefix(colon + 1);
    }
    const std::size_t hyphen = version.rfind('-');
    split.upstream = version.substr(0, hyphen);
    if (hyphen != std::string_view::npos) split.revision = version.substr(hyphen + 1);
    return split;
}

// ---- deb822 lines ----

// A separator line: empty, or (as Debian policy lets parsers accept) only spaces and tabs.
bool is_blank_line(const char* begin, const char* end) {
    for (const char* p = begin; p < end; ++p)
        if (*p != ' ' && *p != '\t' && *p != '\r') return false;
    return true;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// Calls fn for each complete paragraph of text and returns how many bytes were consumed. Without
// at_end, the last paragraph is complete only once a blank line follows it; the unconsumed tail
// is the start of a paragraph the next chunk completes.
std::size_t emit_paragraphs(std::string_view text, bool at_end, Paragraph& paragraph, const ParagraphFn& fn) {
    const char* const data = text.data();
    const char* const end = data + text.size();
    const char* start = data;  // first line of the paragraph being collected
    const char* line = data;
    while (line < end) {
        const char* newline = static_cast<const char*>(std::memchr(line, '\n', end - line));
        if (newline == nullptr) {
            if (!at_end) break;
            newline = end;
        }
        const bool blank =
            newline == line || ((*line == ' ' || *line == '\t' || *line == '\r') && is_blank_line(line, newline));
        if (blank) {
            if (line > start) {
                paragraph.parse(std::string_view(start, line - start));
                fn(paragraph);
            }
            start = newline < end ? newline + 1 : end;
        }
        line = newline < end ? newline + 1 : end;
    }
    if (!at_end) return static_cast<std::size_t>(start - data);
    if (start < end) {
        paragraph.parse(std::string_view(start, end - start));
        fn(paragraph);
    }
    return text.size();
}

// ---- reading and decompressing ----

constexpr std::size_t kChunkSize = std::size_t(1) << 20;

// ---- Release files ----

std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_space(text[i])) ++i;
        const std::size_t begin = i;
        while (i < text.size() && !is_space(text[i])) ++i;
        if (i > begin) words.emplace_back(text.substr(begin, i - begin));
    }
    return words;
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// ---- relations ----

// "name:any (>= 1.0) [amd64] <!nocheck>" -> name and version constraint.
Relation parse_relation(std::string_view text) {
    Relation relation;
    std::size_t i = 0;
    const auto skip_space = [&] {
        while (i < text.size() && is_space(text[i])) ++i;
    };
    skip_space();
    const std::size_t name_begin = i;
    while (i < text.size() && !is_space(text[i]) && text[i] != '(' && text[i] != '[' && text[i] != '<') ++i;
    std::string_view name = text.substr(name_begin, i - name_begin);
    name = name.substr(0, name.find(':'));  // ":any", ":native" or an architecture
    relation.name = std::string(name);

    skip_space();
    if (i >= text.size() || text[i] != '(') return relation;
    ++i;
    skip_space();
    const std::size_t op_begin = i;
    while (i < text.size() && (text[i] == '<' || text[i] == '>' || text[i] == '=')) ++i;
    std::string op(text.substr(op_begin, i - op_begin));
    // dpkg still reads the obsolete "<" and ">" as "<=" and ">=".
    if (op == "<") op = "<=";
    if (op == ">") op = ">=";
    skip_space();
    const std::size_t version_begin = i;
    while (i < text.size() && text[i] != ')' && !is_space(text[i])) ++i;
    relation.version = std::string(text.substr(version_begin, i - version_begin));
    relation.op = relation.version.empty() ? std::string() : op;
    return relation;
}

}  // namespace

int compare_versions(std::string_view a, std::string_view b) {
    const SplitVersion x = split_version(a);
    const SplitVersion y = split_version(b);
    if (x.epoch != y.epoch) return x.epoch < y.epoch ? -1 : 1;
    const int upstream = compare_fragment(x.upstream, y.upstream);
    if (upstream != 0) return upstream;
    return compare_fragment(x.revision, y.revision);
}

std::string_view Paragraph::get(std::string_view field) const {
    for (const auto& [name, value] : fields_)
        if (iequals(name, field)) return value;
    return {};
}

bool Paragraph::has(std::string_view field) const {
    for (const auto& entry : fields_)
        if (iequals(entry.first, field)) return true;
    return false;
}

void Paragraph::parse(std::string_view text) {
    fields_.clear();
    const char* line = text.data();
    const char* const end = line + text.size();
    // Where the last field's value starts; continuation lines extend it to their end.
    const char* value_begin = nullptr;
    while (line < end) {
        const char* newline = static_cast<const char*>(std::memchr(line, '\n', end - line));
        const char* const line_end = newline != nullptr ? newline : end;
        const char first = *line;
        if (first == ' ' || first == '\t') {
            if (value_begin != nullptr) {
                const char* value_end = line_end;
                while (value_end > value_begin && is_space(value_end[-1])) --value_end;
                fields_.back().second = std::string_view(value_begin, value_end - value_begin);
            }
        } else if (first != '#') {
            const char* colon = static_cast<const char*>(std::memchr(line, ':', line_end - line));
            if (colon != nullptr) {
                const char* name_end = colon;
                while (name_end > line && is_space(name_end[-1])) --name_end;
                // As dpkg: skip blanks after ':' but not the newline, so a value that starts on
                // the next line keeps its leading "\n".
                value_begin = colon + 1;
                while (value_begin < line_end && (*value_begin == ' ' || *value_begin == '\t')) ++value_begin;
                const char* value_end = line_end;
                while (value_end > value_begin && is_space(value_end[-1])) --value_end;
                fields_.emplace_back(std::string_view(line, name_end - line),
                                     std::string_view(value_begin, value_end - value_begin));
            } else {
                value_begin = nullptr;  // not a field: its continuation lines have no owner
            }
        }
        line = line_end < end ? line_end + 1 : end;
    }
}

void read_paragraphs(const std::string& path, const ParagraphFn& fn) {
    const std::unique_ptr<Decompressor> source = open_decompressed(path);
    std::vector<char> buffer(kChunkSize);
    std::size_t filled = 0;
    Paragraph paragraph;
    bool at_end = false;
    while (!at_end) {
        // A paragraph larger than half the buffer: grow it so reads stay large.
        if (buffer.size() - filled < buffer.size() / 2) buffer.resize(buffer.size() * 2);
        const std::size_t got = source->read(buffer.data() + filled, buffer.size() - filled);
        at_end = got == 0;
        filled += got;
        const std::size_t consumed = emit_paragraphs(std::string_view(buffer.data(), filled), at_end, paragraph, fn);
        std::memmove(buffer.data(), buffer.data() + consumed, filled - consumed);
        filled -= consumed;
    }
}

void read_paragraphs_text(std::string_view text, const ParagraphFn& fn) {
    Paragraph paragraph;
    emit_paragraphs(text, /*at_end=*/true, paragraph, fn);
}

namespace {

// " <hex> <size> <path>" lines of a SHA256 or SHA512 field, into `files`.
void read_checksums(std::string_view list, std::string IndexFile::*digest, std::map<std::string, IndexFile>& files) {
    std::size_t pos = 0;
    while (pos < list.size()) {
        std::size_t newline = list.find('\n', pos);
        if (newline == std::string_view::npos) newline = list.size();
        const std::vector<std::string> words = split_words(list.substr(pos, newline - pos));
        pos = newline + 1;
        if (words.size() != 3) continue;
        std::int64_t size = 0;
        try {
            size = std::stoll(words[1]);
        } catch (const std::exception&) {
            continue;  // not a checksum line
        }
        IndexFile& entry = files[words[2]];
        entry.*digest = words[0];
        entry.size = size;
    }
}

}  // namespace

ReleaseFile parse_release(std::string_view text) {
    std::size_t first = 0;
    while (first < text.size() && is_space(text[first])) ++first;
    if (starts_with(text.substr(first), "-----BEGIN PGP"))
        throw Error("Release: a signed message, not its verified text (have the host verify it)");
    ReleaseFile release;
    bool done = false;
    read_paragraphs_text(text, [&](const Paragraph& paragraph) {
        if (done) return;  // a Release file is one paragraph
        done = true;
        release.origin = std::string(paragraph.get("Origin"));
        release.suite = std::string(paragraph.get("Suite"));
        release.codename = std::string(paragraph.get("Codename"));
        release.date = std::string(paragraph.get("Date"));
        release.valid_until = std::string(paragraph.get("Valid-Until"));
        release.architectures = split_words(paragraph.get("Architectures"));
        release.components = split_words(paragraph.get("Components"));
        read_checksums(paragraph.get("SHA256"), &IndexFile::sha256, release.files);
        read_checksums(paragraph.get("SHA512"), &IndexFile::sha512, release.files);
    });
    return release;
}

std::optional<std::int64_t> release_time(std::string_view date) {
    // "Sat, 10 Aug 2024 09:37:29 UTC": the weekday is optional, the zone a name or +hhmm.
    std::vector<std::string> w = split_words(date);
    if (!w.empty() && w[0].size() == 4 && w[0].back() == ',') w.erase(w.begin());
    if (w.size() != 5) return std::nullopt;
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int month = -1;
    for (int m = 0; m < 12; ++m)
        if (w[1] == months[m]) month = m;
    int day = 0, year = 0, hour = 0, minute = 0, second = 0;
    char c1 = 0, c2 = 0;
    try {
        day = std::stoi(w[0]);
        year = std::stoi(w[2]);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    std::istringstream clock(w[3]);
    if (month < 0 || !(clock >> hour >> c1 >> minute >> c2 >> second) || c1 != ':' || c2 != ':') return std::nullopt;
    int offset = 0;
    const std::string& zone = w[4];
    if (zone == "UTC" || zone == "GMT" || zone == "Z") {
        offset = 0;
    } else if (zone.size() == 5 && (zone[0] == '+' || zone[0] == '-') &&
               std::all_of(zone.begin() + 1, zone.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        offset = (std::stoi(zone.substr(1, 2)) * 60 + std::stoi(zone.substr(3, 2))) * 60 * (zone[0] == '-' ? -1 : 1);
    } else {
        return std::nullopt;
    }
    // timegm reads the fields as UTC, so the host's time zone never enters.
    std::tm fields{};
    fields.tm_year = year - 1900;
    fields.tm_mon = month;
    fields.tm_mday = day;
    fields.tm_hour = hour;
    fields.tm_min = minute;
    fields.tm_sec = second;
    return static_cast<std::int64_t>(::timegm(&fields)) - offset;
}

std::vector<std::vector<Relation>> parse_relations(std::string_view field) {
    std::vector<std::vector<Relation>> groups;
    std::size_t pos = 0;
    while (pos <= field.size()) {
        std::size_t comma = field.find(',', pos);
        if (comma == std::string_view::npos) comma = field.size();
        const std::string_view group_text = field.substr(pos, comma - pos);
        pos = comma + 1;
        std::vector<Relation> group;
        std::size_t alt_pos = 0;
        while (alt_pos <= group_text.size()) {
            std::size_t bar = group_text.find('|', alt_pos);
            if (bar == std::string_view::npos) bar = group_text.size();
            Relation relation = parse_relation(group_text.substr(alt_pos, bar - alt_pos));
            alt_pos = bar + 1;
            if (!relation.name.empty()) group.push_back(std::move(relation));
        }
        if (!group.empty()) groups.push_back(std::move(group));
    }
    return groups;
}

}  // namespace kbuild::deb
