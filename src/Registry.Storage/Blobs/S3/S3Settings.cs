namespace Registry.Storage.Blobs.S3;

/// <summary>
/// <c>Registry:Storage:S3</c>: where the blobs of <c>Registry:Storage:Kind=s3</c> live. The access key and secret
/// fall back to the SDK's usual environment variables (<c>AWS_ACCESS_KEY_ID</c>, <c>AWS_SECRET_ACCESS_KEY</c>).
/// </summary>
public sealed class S3Settings
{
    /// <summary>The S3 endpoint, e.g. <c>http://127.0.0.1:7480</c> (Ceph RGW) or <c>https://s3.eu-west-1.amazonaws.com</c>.</summary>
    public string? ServiceUrl { get; set; }

    public string? Bucket { get; set; }

    /// <summary>The signing region (SigV4); Ceph RGW accepts <c>us-east-1</c>.</summary>
    public string Region { get; set; } = "us-east-1";

    public string? AccessKey { get; set; }

    public string? SecretKey { get; set; }

    /// <summary>Key prefix of everything the registry stores (<c>blobs/</c>, <c>uploads/</c>, <c>tmp/</c> under it); empty: the bucket's root.</summary>
    public string Prefix { get; set; } = "";

    /// <summary>Pulls answer 307 to a presigned URL instead of proxying the object.</summary>
    public bool Redirect { get; set; }

    /// <summary>How long a presigned download URL is valid.</summary>
    public TimeSpan RedirectExpiry { get; set; } = TimeSpan.FromMinutes(20);

    public string? ResolvedAccessKey => NonEmpty(AccessKey) ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID"));

    public string? ResolvedSecretKey => NonEmpty(SecretKey) ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY"));

    /// <summary>The prefix as keys use it: no leading slash, ending with one (or empty).</summary>
    public string NormalisedPrefix => Prefix.Trim('/') is { Length: > 0 } p ? p + "/" : "";

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    /// <summary>Adds every problem with these settings to <paramref name="errors"/> (all of them, not the first).</summary>
    public void Validate(List<string> errors)
    {
        const string at = "Registry:Storage:S3";
        if (NonEmpty(ServiceUrl) is not { } url)
            errors.Add($"{at}:ServiceUrl is required with Registry:Storage:Kind=s3 (e.g. http://127.0.0.1:7480).");
        else if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            errors.Add($"{at}:ServiceUrl must be an absolute http or https URL (got '{url}').");
        if (NonEmpty(Bucket) is not { } bucket)
            errors.Add($"{at}:Bucket is required with Registry:Storage:Kind=s3.");
        else if (!IsBucketName(bucket))
            errors.Add($"{at}:Bucket '{bucket}' is not a valid bucket name (3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit).");
        if (string.IsNullOrWhiteSpace(Region))
            errors.Add($"{at}:Region must not be empty (Ceph RGW: us-east-1).");
        if (ResolvedAccessKey is null)
            errors.Add($"{at}:AccessKey is required (or the AWS_ACCESS_KEY_ID environment variable).");
        if (ResolvedSecretKey is null)
            errors.Add($"{at}:SecretKey is required (or the AWS_SECRET_ACCESS_KEY environment variable).");
        if (Prefix.Contains("//", StringComparison.Ordinal) || Prefix.Any(char.IsControl) || Prefix.Contains('\\'))
            errors.Add($"{at}:Prefix '{Prefix}' must be a plain key prefix (no '//', backslashes or control characters).");
        // SigV4 presigned URLs are valid for at most 7 days.
        if (RedirectExpiry < TimeSpan.FromSeconds(1) || RedirectExpiry > TimeSpan.FromDays(7))
            errors.Add($"{at}:RedirectExpiry must be between 00:00:01 and 7.00:00:00 (got {RedirectExpiry}).");
    }

    private static bool IsBucketName(string name) =>
        name.Length is >= 3 and <= 63
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-')
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1]);
}
