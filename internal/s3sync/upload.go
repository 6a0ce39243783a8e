package s3sync

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// settle is how long an output file must be left alone before it is uploaded: ComfyUI may
// still be writing it.
const settle = 2 * time.Second

// uploadOutput copies new or changed files of Dir/output to <prefix>/output/. It never
// deletes in the bucket: outputs are results, and a pod's emptyDir starts empty.
func (s *Syncer) uploadOutput(ctx context.Context) (int, error) {
	remote := map[string]Object{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.o.Bucket), Prefix: aws.String(s.key("output/"))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, wrap("ListObjectsV2", s.o.Bucket, err)
		}
		for _, c := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(c.Key), s.o.keyPrefix())
			remote[rel] = Object{Rel: rel, Size: aws.ToInt64(c.Size), LastModified: aws.ToTime(c.LastModified)}
		}
	}
	var todo []string
	root := filepath.Join(s.o.Dir, "output")
	now := s.o.Now()
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && name != root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.o.Dir, name)
		rel = filepath.ToSlash(rel)
		if needsUpload(LocalFile{Exists: true, Size: fi.Size(), ModTime: fi.ModTime()}, remote[rel], now) {
			todo = append(todo, rel)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rel := range todo {
		if err := s.put(ctx, rel); err != nil {
			return n, err
		}
		n++
		s.metrics.uploads.Inc()
	}
	return n, nil
}

// needsUpload: a settled local file that is missing in the bucket, of another size, or newer.
func needsUpload(local LocalFile, remote Object, now time.Time) bool {
	if now.Sub(local.ModTime) < settle {
		return false
	}
	if remote.Rel == "" {
		return true
	}
	return local.Size != remote.Size || local.ModTime.Truncate(time.Second).After(remote.LastModified)
}

func (s *Syncer) put(ctx context.Context, rel string) error {
	f, err := os.Open(filepath.Join(s.o.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	release, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(s.key(rel)), Body: f})
	return wrap("PutObject", s.o.Bucket, err)
}
