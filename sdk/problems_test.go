package sdk

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestProblemsOf(t *testing.T) {
	schema := Schema{
		Attributes: []Attribute{{Name: "image"}, {Name: "image-pull-policy"}, {Name: "command"}, {Name: "url"}},
		Blocks:     []Block{{Name: "tls", Schema: Schema{Attributes: []Attribute{{Name: "ca-file"}}}}},
	}
	err := errors.Join(
		errors.New(`image-pull-policy "Sometimes": want Always, IfNotPresent or Never`),
		errors.Join(errors.New("image is required in unit mode"), fmt.Errorf("command[0] %q: unknown placeholder", "{x}")),
		errors.New("realizer-x: url is required"),
		errors.New("tls.ca-file: no PEM certificates"),
		errors.New("in-cluster cannot be combined with kubeconfig"),
		errors.New("imagery is not an attribute"),
	)
	got := ProblemsOf(err, schema)
	want := []Problem{
		{"image-pull-policy", `image-pull-policy "Sometimes": want Always, IfNotPresent or Never`},
		{"image", "image is required in unit mode"},
		{"command", `command[0] "{x}": unknown placeholder`},
		{"url", "url is required"},
		{"tls.ca-file", "tls.ca-file: no PEM certificates"},
		{"", "in-cluster cannot be combined with kubeconfig"},
		{"", "imagery is not an attribute"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if ProblemsOf(nil, schema) != nil {
		t.Fatal("no error, yet problems")
	}
}
