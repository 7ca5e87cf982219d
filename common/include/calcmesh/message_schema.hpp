#pragma once

// The one definition of each wire message: a table of its members (name, JSON type, whether it
// is required, and where it lives in the message's struct), from which its writer, its full
// reader (nlohmann, every error explained), its fast reader (simdjson, common/src/well_formed.cpp)
// and the list of its members are all derived. Adding a member is one line of its table.

#include <algorithm>
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "calcmesh/error.hpp"
#include "calcmesh/json_writer.hpp"

namespace calcmesh {

/// Reads a JSON integer field of 64-bit signed range, naming `field` in the error.
Result<std::int64_t> integer_field(const nlohmann::json& object, std::string_view field);
/// Reads a required JSON string field.
Result<std::string> string_field(const nlohmann::json& object, std::string_view field);

}  // namespace calcmesh

namespace calcmesh::schema {

/// A member's JSON type.
enum class Type {
    text,
    integer,  ///< 64-bit signed
    number,   ///< any number; written only
    error,    ///< an error object: {"code", "message", "field"}
};

/// Whether a message holds the member.
enum class Presence {
    required,
    optional,     ///< written when the message has a value (`has`); read when present
    informative,  ///< optional text; the full reader passes over a value that is not a string
};

/// What becomes of the member in a message that carries an error (its `Type::error` member).
enum class WithError {
    read,      ///< read as its presence says
    absent,    ///< not read: it belongs to a successful outcome
    optional,  ///< read if it is there and valid: the message need only identify its job
};

/// One member of a wire message.
template <class MessageType>
struct Field {
    using Message = MessageType;

    std::string_view name;
    Type type = Type::text;
    Presence presence = Presence::required;
    WithError with_error = WithError::read;
    /// Whether the message has a value to write; null: always.
    bool (*has)(const Message&) = nullptr;
    /// Appends the member's JSON value.
    void (*write)(std::string& out, const Message&) = nullptr;
    /// Take a value read; a text member may refuse one, and says why.
    Result<void> (*read_text)(Message&, std::string_view) = nullptr;
    void (*read_integer)(Message&, std::int64_t) = nullptr;
    void (*read_error)(Message&, Error) = nullptr;
};

template <class Message, std::size_t size>
using Fields = std::array<Field<Message>, size>;

// ---- Building tables ---------------------------------------------------------------------------
// `Member` is a captureless lambda `[](auto& message) -> auto& { return message.x; }`: the
// same one serves the writer (const) and the readers.

/// A text member kept as it is.
template <class Message, class Member>
constexpr Field<Message> text(std::string_view name, Member,
                              Presence presence = Presence::required) {
    return {.name = name,
            .type = Type::text,
            .presence = presence,
            .write = [](std::string& out,
                        const Message& message) { append_json_string(out, Member{}(message)); },
            .read_text = [](Message& message, std::string_view value) -> Result<void> {
                Member{}(message).assign(value);
                return boost::outcome_v2::success();
            }};
}

/// A text member read by `parse` (a `Result<T>(std::string_view)`, which names what is wrong)
/// and written by `format` (`std::string_view(const T&)`).
template <class Message, auto parse, auto format, class Member>
constexpr Field<Message> parsed_text(std::string_view name, Member,
                                     WithError with_error = WithError::read) {
    return {
        .name = name,
        .type = Type::text,
        .with_error = with_error,
        .write = [](std::string& out,
                    const Message& message) { append_json_string(out, format(Member{}(message))); },
        .read_text = [](Message& message, std::string_view value) -> Result<void> {
            BOOST_OUTCOME_TRY(parsed, parse(value));
            Member{}(message) = std::move(parsed);
            return boost::outcome_v2::success();
        }};
}

/// A required 64-bit integer member.
template <class Message, class Member>
constexpr Field<Message> integer(std::string_view name, Member,
                                 WithError with_error = WithError::read) {
    return {
        .name = name,
        .type = Type::integer,
        .with_error = with_error,
        .write = [](std::string& out,
                    const Message& message) { append_json_integer(out, Member{}(message)); },
        .read_integer = [](Message& message, std::int64_t value) { Member{}(message) = value; }};
}

/// Concatenates tables: a message made of parts shared with others.
template <class Message, std::size_t... sizes>
constexpr auto join(const Fields<Message, sizes>&... parts) {
    Fields<Message, (sizes + ...)> fields{};
    std::size_t at = 0;
    ((std::copy(parts.begin(), parts.end(), fields.begin() + at), at += parts.size()), ...);
    return fields;
}

/// The order members are written in: by name, as nlohmann's dump writes an object (its objects
/// are sorted maps), so that a message's text equals the dump of its JSON object.
template <class Message, std::size_t size>
constexpr std::array<std::size_t, size> written_order(const Fields<Message, size>& fields) {
    std::array<std::size_t, size> order{};
    for (std::size_t i = 0; i < size; ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(),
              [&fields](std::size_t a, std::size_t b) { return fields[a].name < fields[b].name; });
    return order;
}

/// True if no two members share a name.
template <class Message, std::size_t size>
constexpr bool names_are_unique(const Fields<Message, size>& fields) {
    const auto order = written_order(fields);
    for (std::size_t i = 1; i < size; ++i) {
        if (fields[order[i - 1]].name == fields[order[i]].name) {
            return false;
        }
    }
    return true;
}

// ---- The writer -------------------------------------------------------------------------------

/// Appends `message` as compact JSON, its members by name: the same text as nlohmann's dump.
/// The table is a template argument so that every member's code is inlined.
template <const auto& fields, class Message>
void write_object(std::string& out, const Message& message) {
    static_assert(names_are_unique(fields), "two members of a message share a name");
    static constexpr auto kOrder = written_order(fields);
    JsonObjectWriter object(out);
    [&]<std::size_t... index>(std::index_sequence<index...>) {
        const auto member = [&]<std::size_t at>() {
            constexpr const auto& kField = fields[at];
            // A plain if: the optimiser folds the test of a constant, and GCC's
            // UndefinedBehaviorSanitizer does not take a function pointer's test for a constant.
            if (kField.has != nullptr && !kField.has(message)) {
                return;
            }
            kField.write(object.key(kField.name), message);
        };
        (member.template operator()<kOrder[index]>(), ...);
    }
    (std::make_index_sequence<kOrder.size()>{});
}

// ---- The full reader --------------------------------------------------------------------------

/// The error an "error" member reports, if it is an object with string fields code and
/// message (and optionally field).
std::optional<Error> reported_error(const nlohmann::json& member);

/// Reads `json` into `message`, member by member in the table's order, and names the first
/// member that is missing or wrong. Members not in the table are passed over.
template <class Message, std::size_t size>
Result<void> read_object(const nlohmann::json& json, const Fields<Message, size>& fields,
                         Message& message) {
    if (!json.is_object()) {
        return fail(ErrorCode::invalid_json, "expected a JSON object");
    }
    const auto error_field = std::find_if(
        fields.begin(), fields.end(), [](const auto& field) { return field.type == Type::error; });
    const bool carries_error = error_field != fields.end() && json.contains(error_field->name);
    for (const auto& field : fields) {
        const auto member = json.find(field.name);
        const bool present = member != json.end();
        if (field.type == Type::error) {
            if (present) {
                auto error = reported_error(*member);
                if (!error) {
                    return fail(ErrorCode::invalid_field,
                                std::string(field.name) +
                                    " must be an object with string fields code and message",
                                std::string(field.name));
                }
                field.read_error(message, std::move(*error));
            }
            continue;
        }
        if (carries_error && field.with_error == WithError::absent) {
            continue;
        }
        if (field.presence == Presence::informative) {
            if (present && member->is_string()) {
                BOOST_OUTCOME_TRYV(
                    field.read_text(message, member->template get_ref<const std::string&>()));
            }
            continue;
        }
        if (!present && field.presence == Presence::optional) {
            continue;
        }
        if (!present && field.with_error == WithError::absent && error_field != fields.end()) {
            return fail(ErrorCode::missing_field,
                        "expected '" + std::string(field.name) + "' or '" +
                            std::string(error_field->name) + "'",
                        std::string(field.name));
        }
        Result<void> taken = boost::outcome_v2::success();
        if (field.type == Type::integer) {
            const auto value = integer_field(json, field.name);
            if (value) {
                field.read_integer(message, value.value());
            } else {
                taken = boost::outcome_v2::failure(value.error());
            }
        } else {
            const auto value = string_field(json, field.name);
            taken = value ? field.read_text(message, value.value())
                          : Result<void>(boost::outcome_v2::failure(value.error()));
        }
        if (!taken && !(carries_error && field.with_error == WithError::optional)) {
            return taken;
        }
    }
    return boost::outcome_v2::success();
}

}  // namespace calcmesh::schema
