#pragma once

// The members of each message of job.hpp, in the order the full reader checks them (its first
// error names the first bad member); they are written by name. job.cpp derives the writers and
// the full readers from these tables, well_formed.cpp the fast readers.

#include "calcmesh/job.hpp"
#include "calcmesh/message_schema.hpp"

namespace calcmesh::messages {

using schema::Field;
using schema::Fields;
using schema::Presence;
using schema::Type;
using schema::WithError;

inline std::string_view verbatim(const std::string& text) {
    return text;
}

/// The value of "error" in a message: the error's JSON object. Rare, so the one definition of
/// an error's JSON is used as it is.
inline void append_error_object(std::string& out, const Error& error) {
    out += error_json(error)["error"].dump();
}

/// A record id: 1 to kMaxRecordIdLength characters.
Result<std::string> validate_record_id(std::string_view text);

/// The outcome at `Outcome` in a message: "result" and "remainder", or "error".
template <class Message, class OutcomeOf>
constexpr Fields<Message, 3> outcome_fields(OutcomeOf) {
    return {
        Field<Message>{
            .name = "error",
            .type = Type::error,
            .presence = Presence::optional,
            .has = [](const Message& message) { return !OutcomeOf{}(message).has_value(); },
            .write =
                [](std::string& out, const Message& message) {
                    append_error_object(out, OutcomeOf{}(message).error());
                },
            .read_error =
                [](Message& message, Error error) {
                    OutcomeOf{}(message) = boost::outcome_v2::failure(std::move(error));
                }},
        Field<Message>{
            .name = "result",
            .type = Type::integer,
            .with_error = WithError::absent,
            .has = [](const Message& message) { return OutcomeOf{}(message).has_value(); },
            .write =
                [](std::string& out, const Message& message) {
                    append_json_integer(out, OutcomeOf{}(message).value().result);
                },
            .read_integer =
                [](Message& message, std::int64_t value) {
                    OutcomeOf{}(message).value().result = value;
                }},
        Field<Message>{.name = "remainder",
                       .type = Type::integer,
                       .presence = Presence::optional,
                       .with_error = WithError::absent,
                       .has =
                           [](const Message& message) {
                               const auto& outcome = OutcomeOf{}(message);
                               return outcome.has_value() && outcome.value().remainder.has_value();
                           },
                       .write =
                           [](std::string& out, const Message& message) {
                               append_json_integer(out, *OutcomeOf{}(message).value().remainder);
                           },
                       .read_integer =
                           [](Message& message, std::int64_t value) {
                               OutcomeOf{}(message).value().remainder = value;
                           }},
    };
}

/// Who computed it, at `Identity`: the worker is required; the rest is informative, so a peer
/// that omits it is still understood.
template <class Message, class Identity>
constexpr Fields<Message, 4> identity_fields(Identity) {
    return {
        schema::text<Message>(
            "worker", [](auto& message) -> auto& { return Identity{}(message).worker; }),
        schema::text<Message>(
            "instance", [](auto& message) -> auto& { return Identity{}(message).instance; },
            Presence::informative),
        schema::text<Message>(
            "cluster", [](auto& message) -> auto& { return Identity{}(message).cluster; },
            Presence::informative),
        schema::text<Message>(
            "node", [](auto& message) -> auto& { return Identity{}(message).node; },
            Presence::informative),
    };
}

/// A job's operands, at `Input`. With `operands` WithError::optional, a message that carries an
/// error needs only the job id, as a worker answers a request it could not read.
template <class Message, class Input>
constexpr Fields<Message, 4> job_input_fields(Input, WithError operands = WithError::read) {
    return {
        schema::parsed_text<Message, validate_job_id, verbatim>(
            "job_id", [](auto& message) -> auto& { return Input{}(message).job_id; }),
        schema::parsed_text<Message, parse_operation, operation_name>(
            "operation", [](auto& message) -> auto& { return Input{}(message).operation; },
            operands),
        schema::integer<Message>(
            "a", [](auto& message) -> auto& { return Input{}(message).a; }, operands),
        schema::integer<Message>(
            "b", [](auto& message) -> auto& { return Input{}(message).b; }, operands),
    };
}

inline constexpr auto kJobInput =
    job_input_fields<JobInput>([](auto& input) -> auto& { return input; });

inline constexpr auto kWorkerResult = schema::join(
    outcome_fields<WorkerResult>([](auto& result) -> auto& { return result.outcome; }),
    identity_fields<WorkerResult>([](auto& result) -> auto& { return result.identity; }),
    job_input_fields<WorkerResult>([](auto& result) -> auto& { return result.input; }));

inline constexpr auto kResultMessage = schema::join(
    outcome_fields<ResultMessage>([](auto& message) -> auto& { return message.result.outcome; }),
    identity_fields<ResultMessage>([](auto& message) -> auto& { return message.result.identity; }),
    job_input_fields<ResultMessage>(
        [](auto& message) -> auto& { return message.result.input; }, WithError::optional),
    Fields<ResultMessage, 1>{schema::text<ResultMessage>(
        "reply_to", [](auto& message) -> auto& { return message.reply_to; })});

inline constexpr auto kJobRequest = schema::join(
    job_input_fields<JobRequestMessage>([](auto& request) -> auto& { return request.input; }),
    Fields<JobRequestMessage, 1>{schema::text<JobRequestMessage>(
        "reply_to", [](auto& request) -> auto& { return request.reply_to; })});

inline constexpr auto kLogRecord =
    schema::join(outcome_fields<LogRecord>([](auto& record) -> auto& { return record.outcome; }),
                 identity_fields<LogRecord>([](auto& record) -> auto& { return record.identity; }),
                 job_input_fields<LogRecord>([](auto& record) -> auto& { return record.input; }),
                 Fields<LogRecord, 4>{
                     schema::parsed_text<LogRecord, parse_mechanism, mechanism_name>(
                         "mechanism", [](auto& record) -> auto& { return record.mechanism; }),
                     schema::parsed_text<LogRecord, validate_record_id, verbatim>(
                         "record_id", [](auto& record) -> auto& { return record.record_id; }),
                     schema::text<LogRecord>(
                         "received_at", [](auto& record) -> auto& { return record.received_at; }),
                     schema::text<LogRecord>(
                         "completed_at", [](auto& record) -> auto& { return record.completed_at; }),
                 });

}  // namespace calcmesh::messages
