package openprotocol

import (
	"errors"
	"fmt"
)

// ErrorCode is the error code of a MID 0004 command error.
type ErrorCode int

// Error codes of MID 0004 this package names (Open Protocol specification,
// MID 0004 "Command error"; the full table is in errorTexts).
const (
	CodeInvalidData               ErrorCode = 1
	CodePsetNotPresent            ErrorCode = 2
	CodeResultSubscriptionExists  ErrorCode = 9
	CodeResultSubscriptionMissing ErrorCode = 10
	CodeTighteningNotFound        ErrorCode = 15
	CodeClientAlreadyConnected    ErrorCode = 96
	CodeRevisionUnsupported       ErrorCode = 97
	CodeControllerInternalTimeout ErrorCode = 98
	CodeUnknownMID                ErrorCode = 99
)

// errorTexts are the meanings the specification gives each code.
var errorTexts = map[ErrorCode]string{
	0:  "no error",
	1:  "invalid data",
	2:  "parameter set ID not present",
	3:  "parameter set can not be set",
	4:  "parameter set not running",
	6:  "VIN upload subscription already exists",
	7:  "VIN upload subscription does not exist",
	8:  "VIN input source not granted",
	9:  "last tightening result subscription already exists",
	10: "last tightening result subscription does not exist",
	11: "alarm subscription already exists",
	12: "alarm subscription does not exist",
	13: "parameter set selection subscription already exists",
	14: "parameter set selection subscription does not exist",
	15: "tightening ID requested not found",
	16: "connection rejected, protocol busy",
	17: "job ID not present",
	18: "job info subscription already exists",
	19: "job info subscription does not exist",
	20: "job can not be set",
	21: "job not running",
	22: "not possible to execute dynamic job request",
	23: "job batch decrement failed",
	24: "not possible to create parameter set",
	25: "programming control not granted",
	26: "wrong tool type to parameter set download connected",
	27: "tool is inaccessible",
	28: "job abortion is in progress",
	30: "controller is not a sync master/station controller",
	31: "multi-spindle status subscription already exists",
	32: "multi-spindle status subscription does not exist",
	33: "multi-spindle result subscription already exists",
	34: "multi-spindle result subscription does not exist",
	35: "other master client already connected",
	40: "job line control info subscription already exists",
	41: "job line control info subscription does not exist",
	42: "identifier input source not granted",
	43: "multiple identifiers work order subscription already exists",
	44: "multiple identifiers work order subscription does not exist",
	50: "status external monitored inputs subscription already exists",
	51: "status external monitored inputs subscription does not exist",
	52: "IO device not connected",
	53: "faulty IO device ID",
	54: "tool tag ID unknown",
	55: "tool tag ID subscription already exists",
	56: "tool tag ID subscription does not exist",
	57: "tool motor tuning failed",
	58: "no alarm present",
	59: "tool currently in use",
	60: "no histogram available",
	70: "calibration failed",
	71: "subscription already exists",
	72: "subscription does not exist",
	73: "subscribed MID unsupported",
	74: "subscribed MID revision unsupported",
	75: "requested MID unsupported",
	76: "requested MID revision unsupported",
	77: "requested on specific data not supported",
	78: "subscription on specific data not supported",
	79: "command failed",
	92: "Open Protocol commands disabled",
	95: "request rejected, controller in manual mode",
	96: "client already connected",
	97: "MID revision unsupported",
	98: "controller internal request timeout",
	99: "unknown MID",
}

// String is the code's meaning, e.g. "unknown MID".
func (c ErrorCode) String() string {
	if t, ok := errorTexts[c]; ok {
		return t
	}
	return "unlisted error code"
}

// Errors a CommandError of the matching code is (errors.Is).
var (
	// ErrClientAlreadyConnected: the controller refused the connection
	// because another client holds it (error 96). Run backs off.
	ErrClientAlreadyConnected = errors.New("another client holds the controller")
	// ErrRevisionUnsupported: the controller does not know the MID
	// revision asked (error 97).
	ErrRevisionUnsupported = errors.New("MID revision unsupported")
	// ErrUnknownMID: the controller does not know the MID (error 99).
	ErrUnknownMID = errors.New("unknown MID")
	// ErrTighteningNotFound: the controller keeps no tightening of that
	// id (error 15).
	ErrTighteningNotFound = errors.New("tightening not found")
)

var codeErrors = map[ErrorCode]error{
	CodeClientAlreadyConnected: ErrClientAlreadyConnected,
	CodeRevisionUnsupported:    ErrRevisionUnsupported,
	CodeUnknownMID:             ErrUnknownMID,
	CodeTighteningNotFound:     ErrTighteningNotFound,
}

// CommandError is a MID 0004 answer: the controller refused a request.
type CommandError struct {
	// Controller is the configured controller id and Address its address.
	Controller, Address string
	// MID and Revision of the refused request.
	MID, Revision int
	// Code is the controller's error code.
	Code ErrorCode
}

// Error says the MID and the code with its meaning; the client's methods
// wrap it with the controller's id and address.
func (e *CommandError) Error() string {
	return fmt.Sprintf("%s revision %d refused: error %02d %s", midString(e.MID), e.Revision, int(e.Code), e.Code)
}

// Is matches the sentinel of the error's code (ErrClientAlreadyConnected,
// ErrRevisionUnsupported, ErrUnknownMID, ErrTighteningNotFound).
func (e *CommandError) Is(target error) bool {
	s, ok := codeErrors[e.Code]
	return ok && s == target
}

// Errors of the link.
var (
	// ErrNoReply: the controller did not answer a request within the
	// reply timeout; the link is declared dead and redialed.
	ErrNoReply = errors.New("controller did not answer")
	// ErrLinkLost: the connection a request or an acknowledge needed has
	// ended (the controller resends an unacknowledged result on the next).
	ErrLinkLost = errors.New("link to the controller lost")
	// ErrClosed: the client was closed, or its Run has returned.
	ErrClosed = errors.New("client closed")
	// ErrProtocol: the controller answered out of the protocol (a reply
	// that does not parse).
	ErrProtocol = errors.New("protocol violation")
)

// NotFoundError lists tightening ids not fetched while fetching old
// results: those the controller did not keep, and a range too far behind
// to be fetched (Config.CatchUpMax). It is ErrTighteningNotFound
// (errors.Is).
type NotFoundError struct {
	Controller, Address string
	IDs                 []uint32
	// SkippedFrom..SkippedTo were not asked for (0, 0 when none).
	SkippedFrom, SkippedTo uint32
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%v: ids %v", ErrTighteningNotFound, e.IDs)
	if e.SkippedTo > 0 {
		msg += fmt.Sprintf("; ids %d..%d not fetched (too far behind the newest)", e.SkippedFrom, e.SkippedTo)
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrTighteningNotFound) true.
func (e *NotFoundError) Unwrap() error { return ErrTighteningNotFound }
