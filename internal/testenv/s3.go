package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 is a bucket of its own on the test S3 server, with the server's address and credentials.
type S3 struct {
	Endpoint, AccessKey, SecretKey, Bucket string
	Client                                 *s3.Client
}

// S3Bucket creates a bucket named prefix-<n> on the S3 server `make test` starts, fills it with
// objects (key → content), and empties and removes it at cleanup. Skips (fails under CI) when
// no server is set.
func S3Bucket(t testing.TB, prefix string, objects map[string]string) S3 {
	t.Helper()
	b := S3{Endpoint: Require(t, S3Endpoint), AccessKey: Require(t, S3AccessKey), SecretKey: Require(t, S3SecretKey),
		Bucket: fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())}
	b.Client = s3.New(s3.Options{Region: "us-east-1", UsePathStyle: true, BaseEndpoint: aws.String(b.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(b.AccessKey, b.SecretKey, "")})
	ctx := context.Background()
	if _, err := b.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Bucket)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p := s3.NewListObjectsV2Paginator(b.Client, &s3.ListObjectsV2Input{Bucket: aws.String(b.Bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range page.Contents {
				_, _ = b.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.Bucket), Key: o.Key})
			}
		}
		_, _ = b.Client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b.Bucket)})
	})
	for k, v := range objects {
		b.Put(t, k, v)
	}
	return b
}

// Put writes one object.
func (b S3) Put(t testing.TB, key, content string) {
	t.Helper()
	if _, err := b.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key),
		Body: strings.NewReader(content)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}
