package s3sync

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// newClient builds the S3 client for o (after defaults). Credentials are static, from the
// options only: the sidecar takes them from its environment, which the pod fills from the
// Secret; the SDK's other sources (files, instance metadata) are not consulted, so what the
// sidecar uses is exactly what the S3Mount names.
func newClient(o *Options) *s3.Client {
	so := s3.Options{
		Region:       o.Region,
		UsePathStyle: o.PathStyle,
		// Ranged GETs carry no whole-object checksum; the SDK would log that once per part.
		DisableLogOutputChecksumValidationSkipped: true,
		// Checksums on uploads only when the API requires them: self-hosted servers vary.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	}
	if o.Endpoint != "" {
		so.BaseEndpoint = aws.String(strings.TrimRight(o.Endpoint, "/"))
	}
	if o.AccessKeyID != "" {
		so.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken))
	} else {
		so.Credentials = aws.AnonymousCredentials{}
	}
	if o.HTTPClient != nil {
		so.HTTPClient = o.HTTPClient
	} else {
		// One keep-alive connection per request in flight: the SDK's default keeps fewer per
		// host, and every extra TLS handshake costs more than a small object.
		so.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * o.Concurrency
			t.MaxIdleConnsPerHost = 2 * o.Concurrency
		}).WithTimeout(0)
	}
	return s3.New(so)
}

// Check lists at most one key under the prefix: it proves the endpoint answers, the
// credentials are accepted and the bucket exists, in one request. The error names the S3
// error code (ErrorCode) and never a credential.
func Check(ctx context.Context, o Options) error {
	o.defaults()
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := newClient(&o).ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(o.Bucket), Prefix: aws.String(o.keyPrefix()), MaxKeys: aws.Int32(1),
	})
	return wrap("ListObjectsV2", o.Bucket, err)
}

// ListModels lists the model files of the bucket: for each of the model folders, the paths
// under <prefix>/models/<folder>/, as ComfyUI lists them once synced (directory markers left
// out).
func ListModels(ctx context.Context, o Options) (map[string][]string, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	c := newClient(&o)
	out := map[string][]string{}
	for _, f := range o.ModelFolders {
		prefix := o.keyPrefix() + "models/" + f + "/"
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(o.Bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, wrap("ListObjectsV2", o.Bucket, err)
			}
			for _, obj := range page.Contents {
				if name := strings.TrimPrefix(aws.ToString(obj.Key), prefix); name != "" && !strings.HasSuffix(name, "/") {
					out[f] = append(out[f], name)
				}
			}
		}
	}
	return out, nil
}
