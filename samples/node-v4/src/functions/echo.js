// echo: returns the request body byte for byte with the request's own Content-Type.
const { app } = require('@azure/functions');

app.http('echo', {
    methods: ['POST', 'PUT'],
    authLevel: 'anonymous',
    handler: async (request) => {
        const body = Buffer.from(await request.arrayBuffer());
        const contentType = request.headers.get('content-type') || 'application/octet-stream';
        return { body, headers: { 'Content-Type': contentType } };
    },
});
