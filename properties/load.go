package properties

import "errors"

// Load reads and validates a KCL .properties file. (Placeholder: the parser
// lands in the next commit.)
func Load(path string) (*Config, error) {
	return nil, errors.New("properties: loader not implemented yet: " + path)
}
