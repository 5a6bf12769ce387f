package properties

import (
	"errors"
	"strconv"
)

// Error is one problem in a properties file. Load joins several with
// errors.Join; use errors.As to get the first, or unwrap the join for all.
type Error struct {
	File string
	// Line is 0 when the problem is not tied to one line (a missing key).
	Line  int
	Key   string
	Value string
	Msg   string
	// Err is the underlying cause, if any (e.g. an *os.PathError).
	Err error
}

// Error formats as "file:line: key = "value": msg".
func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
		if e.Line > 0 {
			s += " = " + strconv.Quote(e.Value)
		}
	}
	return s + ": " + e.Msg
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errors returns every *Error contained in err (as returned by Load).
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var pe *Error
		if errors.As(err, &pe) {
			out = append(out, pe)
		}
	}
	walk(err)
	return out
}

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
