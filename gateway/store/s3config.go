package store

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Ciphertext backends of [Config.Ciphertext].
const (
	CiphertextSpool = "spool"
	CiphertextS3    = "s3"
)

// S3Config is the bucket of ciphertext backend s3: an S3-compatible object
// store (AWS S3, versitygw, Ceph RGW, …) addressed path-style. The secret
// key is read from a file of mode 0600 or from an environment variable,
// never from the config itself, and is never logged.
type S3Config struct {
	// Endpoint is the server's URL, for example "https://s3.internal:7070".
	// Plain http is accepted for a loopback address only.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds every replica's ciphertext; it must exist.
	Bucket string `yaml:"bucket"`
	// Region signs the requests (default "us-east-1").
	Region string `yaml:"region"`
	// Prefix is put before every key the store writes, for a bucket shared
	// with other data (for example "lexgate/").
	Prefix string `yaml:"prefix"`
	// AccessKeyID is the access key's id (not a secret).
	AccessKeyID string `yaml:"access_key_id"`
	// SecretKeyFile is a file (mode 0600) holding the secret access key.
	SecretKeyFile string `yaml:"secret_key_file"`
	// SecretKeyEnv names an environment variable holding the secret access
	// key, for platforms that inject secrets that way.
	SecretKeyEnv string `yaml:"secret_key_env"`
	// PartSizeMiB is the multipart upload's part size in MiB (default 8,
	// at least 5 as S3 requires; larger for transfers over 10,000 parts).
	PartSizeMiB int `yaml:"part_size_mib"`
	// PartBuffers bounds the memory the replica's writes to the bucket
	// receive into, in parts (default 8): a write holds a part-sized buffer
	// (a piece's size for a smaller write) while it receives and sends it,
	// and waits when PartBuffers × the part size are taken, so that memory
	// stays bounded however many uploads run.
	PartBuffers int `yaml:"part_buffers"`
}

// defaultPartSize is the part size of a multipart upload unless configured.
const defaultPartSize = 8 << 20

func (c S3Config) validate() error {
	switch {
	case c.Endpoint == "":
		return invalidf("config: s3.endpoint is empty: set the URL of the S3-compatible server, e.g. https://s3.internal:7070")
	case c.Bucket == "":
		return invalidf("config: s3.bucket is empty: name the bucket that holds the ciphertext")
	case !validBucket(c.Bucket):
		return invalidf("config: s3.bucket %q is not a bucket name: 3 to 63 lowercase letters, digits, '.' or '-'", c.Bucket)
	case c.AccessKeyID == "":
		return invalidf("config: s3.access_key_id is empty: set the access key's id")
	case (c.SecretKeyFile == "") == (c.SecretKeyEnv == ""):
		return invalidf("config: s3 needs exactly one of secret_key_file (a 0600 file) or secret_key_env (an environment variable's name)")
	case c.PartSizeMiB != 0 && (c.PartSizeMiB < 5 || c.PartSizeMiB > 5120): // S3's smallest part but the last, and its largest
		return invalidf("config: s3.part_size_mib %d is out of range: S3 parts are 5 to 5120 MiB (0: 8)", c.PartSizeMiB)
	case c.PartBuffers < 0 || c.PartBuffers > 1024:
		return invalidf("config: s3.part_buffers %d is out of range: 1 to 1024 (0: %d)", c.PartBuffers, defaultPartBuffers)
	case strings.HasPrefix(c.Prefix, "/"):
		return invalidf("config: s3.prefix %q starts with '/': drop it", c.Prefix)
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return invalidf("config: s3.endpoint %q is not an http(s) URL with a host", c.Endpoint)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return invalidf("config: s3.endpoint %q is plain http to a non-loopback host: use https", c.Endpoint)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// secretKey reads the secret access key from its file or variable. A file
// others can read is refused, as the SVID and log keys are.
func (c S3Config) secretKey() (string, error) {
	if c.SecretKeyEnv != "" {
		v := strings.TrimSpace(os.Getenv(c.SecretKeyEnv))
		if v == "" {
			return "", invalidf("config: s3.secret_key_env names %s, which is empty or unset: export the secret access key in it", c.SecretKeyEnv)
		}
		return v, nil
	}
	fi, err := os.Stat(c.SecretKeyFile)
	if err != nil {
		return "", fmt.Errorf("store: s3.secret_key_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", invalidf("config: s3.secret_key_file %s is readable by others (mode %v): chmod 600 it", c.SecretKeyFile, fi.Mode().Perm())
	}
	b, err := os.ReadFile(c.SecretKeyFile)
	if err != nil {
		return "", fmt.Errorf("store: s3.secret_key_file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", invalidf("config: s3.secret_key_file %s is empty: write the secret access key in it", c.SecretKeyFile)
	}
	return v, nil
}
